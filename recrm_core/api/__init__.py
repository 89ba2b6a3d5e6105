"""The HTTP API (``pip install recrm[api]``): ``create_app(crm)`` returns the ASGI
app; ``recrm serve`` serves it. Importing this package imports FastAPI: the CLI does
so only in the commands that serve. Plugins add routes through
``recrm_api_routes``, take the caller with ``CurrentActor`` and annotate a JSON
body ``JsonBody[Model]``."""

from __future__ import annotations

from .app import create_app
from .auth import Caller, CurrentActor, authenticate, crm_of, current_actor
from .bodies import JsonBody
from .problems import ApiProblem, Problem
from .routes import ApiRoutes

__all__ = ["ApiProblem", "ApiRoutes", "Caller", "CurrentActor", "JsonBody", "Problem",
           "authenticate", "create_app", "crm_of", "current_actor"]
