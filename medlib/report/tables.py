"""Tables from run folders, laid out as the reports printed them and set beside their numbers: one import for
the notebooks. Each concern lives in its own module: `styled` (reproducible formatting), `report1_tables`
(Report 1's layout, R18 vs R50), `cv_tables` (the M3DV folds; Report 2's cross-validation and ensembles are
`studies`' tables, from records) and `dataset_tables` (notebook 00). Aggregates come from `medlib.results`.
"""
from .cv_tables import fold_table
from .dataset_tables import FACT_COLUMNS, dataset_facts, dataset_status
from .report1_tables import aggregate, compare, r18_vs_r50, report_layout, unique
from .styled import BAD, EMPTY, GOOD, MARGIN, MUTED, StyledTable, number, style

__all__ = ["BAD", "EMPTY", "FACT_COLUMNS", "GOOD", "MARGIN", "MUTED", "StyledTable", "aggregate", "compare",
           "dataset_facts", "dataset_status", "fold_table", "number",
           "r18_vs_r50",
           "report_layout", "style", "unique"]
