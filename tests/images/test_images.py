"""Every image exists, runs as intended, and carries nothing a final image must not.

Run after `make build-images`; the tests use the `:latest` tags and real containers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_steps import pipeline
from tests.host_scripts import image_layers as layers
from tests.images.conftest import ALL_IMAGES, STEP_MODULES, Docker, ref

DAGS_DIR = Path(__file__).resolve().parents[2] / "orchestration" / "dags"
IMAGE_DAGS_DIR = "/opt/airflow/dags"


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_image_exists(docker: Docker, name: str) -> None:
    """`make build-images` built and tagged it."""
    done = docker("image", "inspect", ref(name), check=False)
    assert done.returncode == 0, f"{ref(name)} is missing: run `make build-images`"


@pytest.mark.parametrize("name", STEP_MODULES)
def test_step_prints_its_cli_help(docker: Docker, name: str) -> None:
    """The entrypoint is the step's own CLI (what Airflow runs), and it starts without settings."""
    done = docker("run", "--rm", ref(name), "--help", check=False)
    assert done.returncode == 0, f"{ref(name)} --help failed:\n{done.stderr}"
    assert f"python -m pipeline_steps {STEP_MODULES[name]}" in done.stdout
    assert done.stdout.startswith("usage:")


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_runs_as_non_root(docker: Docker, name: str) -> None:
    """No image runs its process as root."""
    uid = docker("run", "--rm", "--entrypoint", "id", ref(name), "-u").stdout.strip()
    assert uid.isdigit() and int(uid) != 0, f"{ref(name)} runs as uid {uid}"


DRIFT_TABLES = (
    "import numpy as np, pandas as pd\n"
    "from pipeline_steps.data import drift\n"
    "from pipeline_steps.errors import DataValidationError\n"
    "from pipeline_steps.data.schema import Feature, TableSchema\n"
    "schema = TableSchema(target='t', classes=(0, 1), features=(Feature('a', 'numeric'), "
    "Feature('b', 'numeric'), Feature('c', 'categorical', ('x', 'y'))))\n"
    "rng = np.random.default_rng(0)\n"
    "ref = pd.DataFrame({'a': rng.normal(0, 1, 400), 'b': rng.normal(0, 1, 400), "
    "'c': rng.choice(['x', 'y'], 400), 't': rng.integers(0, 2, 400)})\n"
    "cur = ref.sample(frac=1, random_state=1).reset_index(drop=True)\n"
    "cur['a'] = cur['a'] + 3\n"
)


def test_check_drift_measures_drift_with_evidently_as_the_schema_s_kinds(docker: Docker) -> None:
    """Evidently runs in the check-drift image (pandas<3): a shifted column drifts, the others do not;
    the label is not counted among the columns; an older version's text in a number column is a gap,
    not a crash."""
    script = DRIFT_TABLES + (
        "summary, html = drift.measure(ref, cur, schema)\n"
        "print(summary.line(), len(html) > 10000)\n"
        "typo = ref.astype({'b': object})\n"
        "typo.loc[:5, 'b'] = 'oops'\n"
        "print(drift.measure(typo, cur, schema)[0].line())\n"
    )
    done = docker("run", "--rm", "--entrypoint", "python", ref("check-drift"), "-c", script)
    assert done.stdout.strip().splitlines() == ["1 of 3 columns drifted (33%): a True",
                                                "1 of 3 columns drifted (33%): a"], done.stdout + done.stderr


def test_data_evidently_cannot_compare_is_a_data_problem_named_in_one_line(docker: Docker) -> None:
    """What Evidently raises on the data is a DataValidationError (exit code 3: no retry), not a traceback."""
    script = DRIFT_TABLES + (
        "try:\n"
        "    drift.measure(ref, cur.assign(a=np.nan), schema)\n"
        "except DataValidationError as exc:\n"
        "    print(exc)\n"
    )
    done = docker("run", "--rm", "--entrypoint", "python", ref("check-drift"), "-c", script)
    assert done.stdout.strip() == (
        "Evidently could not compare the two data versions: ValueError: An empty column 'a' was provided "
        "for drift calculation in the current dataset."), done.stdout + done.stderr


@pytest.mark.parametrize("name", ["check-drift", "tune", "train", "evaluate"])
def test_the_steps_that_read_splits_read_them_back_as_written_with_their_own_pandas(
    docker: Docker, name: str
) -> None:
    """prepare's Parquet splits read back alike in every image that reads them (check-drift has pandas<3)."""
    script = (
        "import tempfile, pandas as pd\n"
        "from pipeline_steps import settings\n"
        "from pipeline_steps.data import tables\n"
        "from pipeline_steps.services import storage\n"
        "frame = pd.DataFrame({'amount': [1.5, None], 'plan': ['gold', None], 'label': ['yes', 'no']})\n"
        "path = tempfile.mktemp(suffix='.parquet')\n"
        "store = storage.Storage(settings.load_settings().s3)\n"
        "store.write_bytes(path, tables.to_parquet(frame))\n"
        "pd.testing.assert_frame_equal(tables.read_frame(store, path), frame)\n"
        "print('same')\n"
    )
    done = docker("run", "--rm", "--entrypoint", "python", ref(name), "-c", script, check=False)
    assert done.stdout.strip() == "same", done.stdout + done.stderr


def test_train_imports_xgboost(docker: Docker) -> None:
    """The train venv holds the model library (the CPU wheel) and what the step imports with it."""
    done = docker(
        "run", "--rm", "--entrypoint", "python", ref("train"),
        "-c", "import xgboost, sklearn, pandas, mlflow; print(xgboost.__version__)",
    )
    assert done.stdout.strip()[0].isdigit()


def test_airflow_loads_the_dag_folder_without_import_errors(docker: Docker) -> None:
    """The DAG folder baked into the image parses, with the image's own Airflow and providers."""
    script = (
        "import json, pathlib\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        # As the dag-processor parses it: the folder is a bundle, on sys.path for its helpers.
        f"bag = BundleDagBag(dag_folder={IMAGE_DAGS_DIR!r}, bundle_path=pathlib.Path({IMAGE_DAGS_DIR!r}))\n"
        "print(json.dumps({'errors': bag.import_errors, 'dag_ids': sorted(bag.dag_ids),\n"
        "  'parsed': sorted(pathlib.Path(s.file).name for s in bag.dagbag_stats),\n"
        f"  'files': sorted(p.name for p in pathlib.Path({IMAGE_DAGS_DIR!r}).glob('*.py'))}}))\n"
    )
    done = docker(
        "run", "--rm", "-e", "AIRFLOW__CORE__LOAD_EXAMPLES=False",
        "--entrypoint", "python", ref("airflow"), "-c", script, timeout=300,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    # The image holds the repository's DAG files, and DagBag parsed every one that defines a DAG.
    assert result["files"] == sorted(p.name for p in DAGS_DIR.glob("*.py"))
    dag_files = sorted(p.name for p in DAGS_DIR.glob("*.py") if "DAG" in p.read_text())
    assert set(dag_files) <= set(result["parsed"])
    assert len(result["dag_ids"]) >= len(dag_files)


@pytest.mark.parametrize("name", ALL_IMAGES)
def test_no_compilers_caches_or_test_suites(docker: Docker, name: str) -> None:
    """Final images hold no compiler, no pip or uv cache and no `tests/` directory.

    Except Evidently's own `tests` packages (check-drift): they are its test presets, code it imports.
    """
    # As root, so that nothing (e.g. /root/.cache) is hidden by permissions.
    script = (
        "for tool in gcc cc c++ g++ clang make; do command -v $tool; done; "
        "find / -xdev \\( -type d -name tests ! -path '*/site-packages/evidently/*' "
        "-o -path '*/.cache/pip' -o -path '*/.cache/uv' -o -path '*/root/.cache' \\) -print"
    )
    done = docker("run", "--rm", "--user", "0", "--entrypoint", "sh", ref(name), "-c", script)
    assert done.stdout.strip() == "", f"{ref(name)} carries:\n{done.stdout}"


def step_layers() -> dict[str, list[str]]:
    """Step image -> the shared layers it is built on (images/layers.py and the lock each image uses)."""
    return {step.image: layers.chain(layers.deepest_layer(str(step.lock))) for step in pipeline.STEPS
            if step.lock}


def test_step_images_built_on_the_same_shared_layer_hold_the_same_layers_up_to_it(docker: Docker) -> None:
    """numpy, scipy, pyarrow and the rest are stored once: every image on a shared layer has its bytes.

    Each step image is the base, the runtime's user, its chain of shared layers, then its own.
    """
    below = {name: json.loads(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", ref(name)).stdout)
             for name in STEP_MODULES}
    chains = step_layers()
    for depth, layer in enumerate(("core", "science", "tabular"), start=3):
        on_it = sorted(name for name, chain in chains.items() if layer in chain)
        assert len(on_it) >= 2, f"only {on_it} use {layer}"
        prefixes = {tuple(below[name][:depth]) for name in on_it}
        assert len(prefixes) == 1, f"the images on {layer} ({', '.join(on_it)}) differ below it"


@pytest.mark.parametrize("name", [*STEP_MODULES, "mlflow", "airflow"])
def test_every_shared_library_finds_the_libraries_it_links(docker: Docker, name: str) -> None:
    """What the builder prunes (pyarrow's Flight, headers, linker-name copies) leaves nothing dangling.

    Judged on the extension modules Python loads, with everything they pull in: a vendored library
    read on its own can miss a sibling the module's own search path provides (scipy's gfortran).
    """
    script = ("find /opt -type f \\( -name '*.cpython-*.so' -o -name '*.abi3.so' \\) "
              "-exec ldd {} + 2>/dev/null | grep -e '^/' -e 'not found'")
    lines = docker("run", "--rm", "--entrypoint", "sh", ref(name), "-c", script).stdout.splitlines()
    assert any(line.startswith("/opt/") for line in lines), f"{ref(name)}: ldd read no library"
    missing = [line for line in lines if "not found" in line]
    assert missing == [], f"{ref(name)} links to what it does not have:\n" + "\n".join(lines[-200:])
