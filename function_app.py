"""The Functions app: one DFApp with the pipeline's blueprints registered, nothing else."""

import azure.durable_functions as df

from activities import bp as activities
from imagegen.service.process import start
from orchestrations import bp as orchestrations
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

app.register_functions(http_api)
app.register_functions(foundry)
app.register_functions(health)
app.register_functions(models)
app.register_functions(openapi)
app.register_functions(gallery)
app.register_functions(blob_drop)
app.register_functions(schedules)
app.register_functions(retention)
app.register_functions(orchestrations)
app.register_functions(activities)
