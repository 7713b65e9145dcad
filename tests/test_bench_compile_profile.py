"""benchmarks/compile_profile.py: the summary adds up every process's file by file and by
compiled function, and ranks the costliest first."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import compile_profile  # noqa: E402


def payload(tests, functions):
    return {"tests": tests, "functions": functions}


def test_files_and_functions_add_up_over_processes_costliest_first(tmp_path, capsys):
    worker0 = payload({"tests/test_a.py::one": {"compile": 2.0, "wall": 3.0, "compilations": 4},
                       "tests/test_a.py::two": {"compile": 1.0, "wall": 1.5, "compilations": 1}},
                      {"jit(_chunk)": [2.5, 2], "jit(add)": [0.5, 3]})
    worker1 = payload({"tests/test_b.py::three": {"compile": 5.0, "wall": 6.0, "compilations": 2},
                       compile_profile.OUTSIDE: {"compile": 0.25, "compilations": 1}},
                      {"jit(_chunk)": [5.0, 2], "jit(_init_one)": [0.25, 1]})
    for name, data in (("gw0", worker0), ("gw1", worker1)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    tests, functions = compile_profile.merge([worker0, worker1])
    files = compile_profile.by_file(tests)
    assert files["tests/test_a.py"]["compile"] == 3.0 and files["tests/test_a.py"]["compilations"] == 5
    assert functions["jit(_chunk)"] == [7.5, 4] and functions["jit(add)"] == [0.5, 3]

    assert compile_profile.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 tests: 10 s of test time, 8 s of it backend compilation (8 compilations)")
    assert out.index("tests/test_b.py") < out.index("tests/test_a.py")  # 5 s before 3 s
    assert out.index("jit(_chunk)") < out.index("jit(add)") < out.index("jit(_init_one)")


def test_an_empty_or_missing_directory_is_one_line_and_exit_2(tmp_path, capsys):
    assert compile_profile.main([str(tmp_path)]) == 2
    assert compile_profile.main([str(tmp_path / "nowhere")]) == 2
    assert compile_profile.main([]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 3
