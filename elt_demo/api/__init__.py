"""A small local JSON API over the synthetic data (127.0.0.1 only), with faults on demand."""

from elt_demo.api.faults import FaultPlan
from elt_demo.api.server import TOKEN_ENV, URL_ENV, DemoApi
from elt_demo.api.session import serving_demo_api

__all__ = ["TOKEN_ENV", "URL_ENV", "DemoApi", "FaultPlan", "serving_demo_api"]
