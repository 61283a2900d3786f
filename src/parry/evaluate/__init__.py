"""Evaluation: running attacks over data sets, the results store, the benchmark runner and its tables."""

from .attack_table import AttackSpec, attack_in_batches, evaluate_attacks, rows_to_markdown
from .markdown import matrix_to_markdown, to_markdown
from .model_spec import ModelSpec
from .outcomes import OutcomeBatch, Outcomes
from .points import EvalPoints
from .report import ReportPaths, render_html, render_leaderboard, render_markdown, write_report
from .report_builder import build_report, leaderboard_rows, write_store_report
from .report_data import AttackRow, Gallery, ModelRow, Provenance, ReportData, RobustnessCurve, TransferMatrix
from .runner import GridRun, run_grid
from .schema import SCHEMA_VERSION, StoreError
from .specs import GridAttack, ThreatSpec
from .store import DEFAULT_STORE, ResultsStore, UnitKey, UnitRecord
from .tables import (accuracy_table, cross_dataset_transfer, norm_table, recipe_generalisation, robustness_curves,
                     transfer_matrix, transfer_table, worst_case_points, worst_case_table)
from .transfer_runner import run_transfers

__all__ = [
    "DEFAULT_STORE", "SCHEMA_VERSION", "AttackRow", "AttackSpec", "EvalPoints", "Gallery", "GridAttack", "GridRun",
    "ModelRow", "ModelSpec", "OutcomeBatch", "Outcomes", "Provenance", "ReportData", "ReportPaths", "ResultsStore",
    "RobustnessCurve", "StoreError", "ThreatSpec", "TransferMatrix", "UnitKey", "UnitRecord", "accuracy_table",
    "attack_in_batches", "build_report", "cross_dataset_transfer", "evaluate_attacks", "leaderboard_rows",
    "matrix_to_markdown", "norm_table", "recipe_generalisation", "render_html", "render_leaderboard",
    "render_markdown", "robustness_curves", "rows_to_markdown", "run_grid", "run_transfers", "to_markdown",
    "transfer_matrix", "transfer_table", "worst_case_points", "worst_case_table", "write_report",
    "write_store_report",
]
