"""Durable Diffusion's domain library: job specs, diffusion, safety, storage, manifests."""

import logging

# The Azure SDKs log every HTTP request and response at INFO: keep our logs readable.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
