"""Model protocols and adapters. Import adapters from their modules; this package stays light."""

from pytest_nerrobust.models.base import GradientNERModel, NERModel, WordFeatures

__all__ = ["GradientNERModel", "NERModel", "WordFeatures"]
