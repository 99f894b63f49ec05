"""The Functions app: one DFApp with the pipeline's blueprints registered, nothing else.

Which blueprints is the app's role (`IMAGEGEN_APP_ROLE`): in Azure the control plane (no
GPU) and the GPU pool (scales to zero) are two apps of one image; locally one app is both.
"""

import azure.durable_functions as df

from activities import bp as activities
from activities import render_worker
from imagegen.service.process import start
from orchestrations import bp as orchestrations
from triggers import render_outcomes
from triggers.blob_drop import bp as blob_drop
from triggers.foundry import bp as foundry
from triggers.gallery import bp as gallery
from triggers.health import bp as health
from triggers.http_api import bp as http_api
from triggers.models import bp as models
from triggers.openapi import bp as openapi
from triggers.retention import bp as retention
from triggers.schedules import bp as schedules
from triggers.sign_in import routes_auth_level

# The process's services, every setting checked once, here: a bad one stops the start with
# its name, not a request later.
settings = start().settings

# Function keys, unless built-in authentication (IMAGEGEN_SIGN_IN=entra) guards the routes.
app = df.DFApp(http_auth_level=routes_auth_level(settings))

if settings.app_role in ("all", "control"):
    for blueprint in (http_api, foundry, health, models, openapi, gallery, blob_drop, schedules, retention,
                      orchestrations, activities, render_outcomes.blueprint(settings.render_queue)):
        app.register_functions(blueprint)
if settings.app_role in ("all", "render"):
    app.register_functions(render_worker.blueprint(settings.render_queue))
