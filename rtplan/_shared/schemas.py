"""JSON Schemas in ``schemas/``, generated from the pydantic models.

Regenerate with ``python -m rtplan._shared.schemas [SCHEMAS_DIR]``; a test fails when the
committed files differ from what the models generate.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

#: schema file (relative to ``schemas/``) -> "module:Model:mode", where mode is
#: ``validation`` for what rtplan reads and ``serialization`` for what it writes.
SCHEMA_MODELS: dict[str, str] = {
    "radiobiology/fractionation.json": "rtplan.radiobiology.schedule:Fractionation:validation",
    "radiobiology/sib_plan.json": "rtplan.radiobiology.schedule:SIBPlan:validation",
    "radiobiology/plan_preset.json": "rtplan.radiobiology.schedule:PlanPreset:validation",
    "radiobiology/tissue_preset.json": "rtplan.radiobiology.tissues:TissuePreset:validation",
    "radiobiology/eqd2_result.json": "rtplan.radiobiology.analysis:EQD2Result:serialization",
    "radiobiology/equivalent_report.json": "rtplan.radiobiology.api:EquivalentReport:serialization",
    "radiobiology/comparison_report.json": "rtplan.radiobiology.api:ComparisonReport:serialization",
    "radiobiology/presets_listing.json": "rtplan.radiobiology.api:PresetsListing:serialization",
    "radiobiology/eqd2_curves.json": "rtplan.radiobiology.api:EQD2Curves:serialization",
    "structures/lesions_file.json": "rtplan.lesions:LesionsFile:validation",
    "structures/structures_report.json":
        "rtplan.structures.report:StructuresReport:serialization",
    "imaging/registration_matrix.json": "rtplan.imaging.registration:MatrixFile:validation",
    "imaging/pet_lesion_report.json": "rtplan.imaging.pet_lesions:PETLesionReport:serialization",
    "demo/pet_truth.json": "rtplan.demo:DemoPETTruth:serialization",
    "demo/pet_comparison.json": "rtplan.demo:DemoPETComparison:serialization",
    "dose/alpha_beta_spec.json": "rtplan.dose.eqd2map:AlphaBetaSpec:validation",
    "dose/dvh_statistics.json": "rtplan.dose.dvh:DVHStatistics:serialization",
    "dose/course_coverage.json": "rtplan.dose.sum:CourseCoverage:serialization",
    "cohort/index.json": "rtplan.cohort.models:CohortIndex:serialization",
    "cohort/dvh_parameters.json": "rtplan.cohort.models:DVHParameters:validation",
    "cohort/metric_record.json": "rtplan.cohort.models:MetricRecord:serialization",
    "cohort/patient_result.json": "rtplan.cohort.models:PatientResult:serialization",
    "cohort/run_summary.json": "rtplan.cohort.models:RunSummary:serialization",
}


def render_schemas() -> dict[str, str]:
    """Schema texts by relative path, deterministic (sorted keys, trailing newline)."""
    out = {}
    for rel, target in SCHEMA_MODELS.items():
        mod, name, mode = target.split(":")
        model = getattr(importlib.import_module(mod), name)
        schema = model.model_json_schema(mode=mode)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://rtplan.invalid/schemas/{rel}"
        out[rel] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def write_schemas(root: str | Path) -> list[Path]:
    """Write every schema under ``root``; return the paths written."""
    root = Path(root)
    written = []
    for rel, text in render_schemas().items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        written.append(p)
    return written


if __name__ == "__main__":  # pragma: no cover
    target = sys.argv[1] if len(sys.argv) > 1 else "schemas"
    for path in write_schemas(target):
        print(path)
