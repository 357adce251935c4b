"""JSON Schemas of the outcomes models (cohort records and the report).

Run ``python -m rtplan.outcomes._schema [DIR]`` to (re)write them to
``schemas/outcomes/`` (the default); a test fails when the committed files drift from
the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from rtplan._shared.io import atomic_write_text
from rtplan.outcomes._cohort import LesionRecord, PatientRecord, PsaRecord, ToxicityRecord
from rtplan.outcomes._report import OutcomesReport

__all__ = ["SCHEMA_MODELS", "outcomes_json_schemas", "write_schemas"]

#: File stem -> model.
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "patient": PatientRecord,
    "psa": PsaRecord,
    "toxicity": ToxicityRecord,
    "lesion": LesionRecord,
    "report": OutcomesReport,
}


def outcomes_json_schemas() -> dict[str, str]:
    """File name -> JSON Schema text (sorted keys, 2-space indent, trailing newline).

    Examples
    --------
    >>> sorted(outcomes_json_schemas())[:2]
    ['lesion.schema.json', 'patient.schema.json']
    """
    out = {}
    for stem, model in SCHEMA_MODELS.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"rtplan/outcomes/{stem}.schema.json"
        out[f"{stem}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def write_schemas(directory: str | Path, overwrite: bool = True) -> list[Path]:
    """Write every outcomes schema into ``directory``; return the paths."""
    d = Path(directory)
    return [atomic_write_text(d / name, text, overwrite=overwrite)
            for name, text in outcomes_json_schemas().items()]


if __name__ == "__main__":  # pragma: no cover
    target = sys.argv[1] if len(sys.argv) > 1 else "schemas/outcomes"
    for path in write_schemas(target):
        print(f"wrote {path}")
