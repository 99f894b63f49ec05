"""The devhost test app: one of each thing devhost must run, and nothing about images.

Activities write their effects to files under `SAMPLE_EFFECTS_DIR` so the tests can see
what ran, and how often, from outside the host process.
"""

import azure.durable_functions as df
import azure.functions as func
from sample_http import bp as http_bp
from sample_orchestrations import bp as orchestrations_bp
from storage_triggers import bp as storage_bp

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(orchestrations_bp)
app.register_functions(http_bp)
app.register_functions(storage_bp)
