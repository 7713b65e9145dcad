import json
import os
from importlib import resources
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "table1.json"


@pytest.mark.skipif(not SHARED.is_file() and not os.environ.get("QTRAN_REQUIRE_SHARED"),
                    reason="../shared is not beside this checkout")
def test_packaged_table1_equals_shared_reference():
    packaged = json.loads(resources.files("qtran.data").joinpath("table1.json").read_text())
    assert packaged == json.loads(SHARED.read_text())
