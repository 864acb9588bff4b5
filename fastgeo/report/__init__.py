"""Figures and metrics of interpolation paths, from plain arrays (the paper's Figs. 1-9).

See :mod:`fastgeo.report.figures` and :mod:`fastgeo.report.metrics`.
"""
from .figures import distance_and_ri_plot, image_grid, image_strips, projection_plot, strip_indices
from .metrics import path_metrics, project_onto_endpoints, step_distances

__all__ = ["image_grid", "image_strips", "distance_and_ri_plot", "projection_plot", "strip_indices",
           "path_metrics", "project_onto_endpoints", "step_distances"]
