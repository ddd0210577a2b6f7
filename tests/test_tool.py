"""The `mpyml` tool as a user meets it: every CLI command on every family, the wheel in a fresh venv,
deploy to an emulated board over mpremote, and the README's commands (so they cannot drift)."""

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest

from mpyml import boards, build

REPO = Path(__file__).resolve().parents[1]


def mpyml(*args, cwd=None, env=None, exe=(sys.executable, "-m", "mpyml")):
    env = dict(os.environ if env is None else env, PYTHONPATH=str(REPO / "exporter"), KERAS_BACKEND="torch")
    return subprocess.run([*exe, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def family_files(family, folder: Path):
    """Writes est (estimator file), X.npy (rows) for a family; returns (estimator file, export options)."""
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_iris
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if family == "iir":
            from scipy import signal

            np.save(folder / "sos.npy", signal.butter(4, [0.1, 0.3], btype="bandpass", output="sos"))
            np.save(folder / "X.npy", np.random.default_rng(0).standard_normal(2000))
            return folder / "sos.npy", []
        if family == "keras":
            keras = pytest.importorskip("keras")
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, activation="relu"),
                                      keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
            model.compile("adam", "sparse_categorical_crossentropy")
            Xk = np.random.default_rng(0).random((40, 8, 8, 1)).astype(np.float32)
            model.fit(Xk, np.arange(40) % 3, epochs=1, verbose=0)
            model.save(folder / "est.keras")
            np.save(folder / "X.npy", Xk)
            return folder / "est.keras", []
        estimator, options = {
            "tree": (lambda: RandomForestClassifier(5, max_depth=4, random_state=0).fit(X, y), []),
            "isolation": (lambda: IsolationForest(n_estimators=10, random_state=0).fit(X), []),
            "pipeline": (lambda: make_pipeline(StandardScaler(), PCA(3), RandomForestClassifier(4, random_state=0))
                         .fit(X, y), []),
            "isolation pipeline": (lambda: make_pipeline(StandardScaler(), PCA(3), IsolationForest(
                n_estimators=10, random_state=0)).fit(X), []),
            "knn": (lambda: KNeighborsClassifier(3).fit(np.round(X * 10), y), []),
            "linear": (lambda: LogisticRegression(max_iter=1000).fit(X, y), []),
            "mlp": (lambda: MLPClassifier((8,), max_iter=300, random_state=0).fit(X, y), []),
            "mixture": (lambda: GaussianMixture(2, random_state=0).fit(X), ["--training-data", folder / "X.npy"]),
            "kmeans": (lambda: KMeans(3, n_init=3, random_state=0).fit(X), []),
        }[family]
        joblib.dump(estimator(), folder / "est.joblib")
        if family == "knn":
            np.save(folder / "X.npy", np.round(X * 10))
    return folder / "est.joblib", options


FAMILIES = {"tree": "emltrees", "isolation": "emltrees", "isolation pipeline": "emltrees", "pipeline": "emltrees", "knn": "emlneighbors", "linear": "emllinear",
            "mlp": "emlcnn", "keras": "emlcnn", "iir": "emliir", "mixture": "emlmixture", "kmeans": "emlmixture"}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_command_on_every_family(tmp_path, family):
    estimator, options = family_files(family, tmp_path)
    module = FAMILIES[family]
    model = tmp_path / "model.out"

    out = mpyml("export", estimator, model, *options)
    assert out.returncode == 0, out.stdout + out.stderr

    out = mpyml("inspect", model)
    assert out.returncode == 0 and "%s on the unix port loads it: OK" % module in out.stdout, out.stdout + out.stderr

    out = mpyml("verify", estimator, tmp_path / "X.npy", *options)
    assert out.returncode == 0, out.stdout + out.stderr
    n = len(np.load(tmp_path / "X.npy"))
    assert re.search(r"\(%s\): %d/%d (rows|samples) agree with the library .*: OK on the unix port" % (module, n, n),
                     out.stdout), out.stdout

    out = mpyml("verify", model)
    assert out.returncode == 0 and "loads it: OK" in out.stdout, out.stdout + out.stderr

    # A damaged copy: the device's own message with the file line, exit 1, no traceback.
    data = model.read_bytes()
    (tmp_path / "bad.out").write_bytes(data[: len(data) * 2 // 3])
    for command in ("inspect", "verify"):
        out = mpyml(command, tmp_path / "bad.out")
        assert out.returncode == 1 and "%s refuses it" % module in out.stderr, out.stdout + out.stderr
        assert "Traceback" not in out.stderr


def test_inspect_and_verify_refuse_clearly(tmp_path):
    out = mpyml("inspect", tmp_path / "missing.csv")
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "notes.txt").write_text("hello\n")
    out = mpyml("inspect", tmp_path / "notes.txt")
    assert out.returncode == 1 and "not an mpyml model file" in out.stderr and "Traceback" not in out.stderr
    # the cases: a feature index beyond n_features, a lowered n_features
    estimator, _ = family_files("tree", tmp_path)
    assert mpyml("export", estimator, tmp_path / "m.csv").returncode == 0
    text = (tmp_path / "m.csv").read_text()
    (tmp_path / "low.csv").write_text(text.replace("\nn_features,4\n", "\nn_features,3\n"))
    out = mpyml("inspect", tmp_path / "low.csv")
    assert out.returncode == 1 and re.search(r"emltrees refuses it: ValueError: model file line \d+: ", out.stderr), \
        out.stdout + out.stderr


def test_verify_refuses_rows_of_the_wrong_shape(tmp_path):
    """Too few features, one row as a 1-D array, no rows: a one-line message, not the device's traceback."""
    estimator, _ = family_files("tree", tmp_path)
    X = np.load(tmp_path / "X.npy")
    for rows, words in ((X[:, :3], "X: the model takes 4 features per row, X has 3 (shape (150, 3))"),
                        (X[0], "X: expected rows of 4 features, shape (n_rows, 4) with n_rows >= 1; got shape (4,)"),
                        (X[:0], "got shape (0, 4)")):
        np.save(tmp_path / "bad.npy", rows)
        out = mpyml("verify", estimator, tmp_path / "bad.npy")
        assert out.returncode == 2 and words in out.stderr, out.stdout + out.stderr
        assert "Traceback" not in out.stderr, out.stderr


def test_verify_confusion_matrix(tmp_path):
    pytest.importorskip("matplotlib")
    estimator, _ = family_files("tree", tmp_path)
    out = mpyml("verify", estimator, tmp_path / "X.npy", "--confusion-matrix", tmp_path / "cm.png",
                "--y", tmp_path / "y.npy")
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_sets_micropypath(tmp_path):
    build.build("emltrees", "x64")
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    (tmp_path / "main.py").write_text("import sys, emltrees, helper\nprint('ok', helper.VALUE, sys.argv[1:])\n")
    out = mpyml("run", tmp_path / "main.py", "a", "b")
    assert out.returncode == 0 and "ok 42 ['a', 'b']" in out.stdout, out.stdout + out.stderr
    # A module the script imports that is not built yet is built first (as verify does).
    (tmp_path / "iir.py").write_text("import array\nfrom emliir import load\nprint('loaded', load)\n")
    out = mpyml("run", "--mpy", tmp_path / "mods", tmp_path / "iir.py")
    assert out.returncode == 0 and "loaded <function" in out.stdout, out.stdout + out.stderr
    assert "building emliir for x64" in out.stderr and (tmp_path / "mods" / "x64_6.3" / "emliir.mpy").is_file()
    out = mpyml("run", "--print-path")
    assert out.stdout.startswith("MICROPYPATH=%s" % build.module_dir("x64")), out.stdout


@pytest.mark.boards
def test_verify_on_an_emulated_board(tmp_path):
    pytest.importorskip("mpremote")
    estimator, _ = family_files("tree", tmp_path)
    X = np.load(tmp_path / "X.npy")
    np.save(tmp_path / "X30.npy", X[::5])
    try:
        boards.firmware("MPS2_AN385")
    except build.ToolchainMissing as error:
        pytest.skip(str(error))
    out = mpyml("verify", estimator, tmp_path / "X30.npy", "--board", "MPS2_AN385")
    assert out.returncode == 0 and "30/30 rows agree" in out.stdout and "on MPS2_AN385" in out.stdout, \
        out.stdout + out.stderr
    # Wide rows, more than a board's heap holds at once (the digits test split: 57.6 KB as int16): verify
    # sends them in several runs.
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_digits(return_X_y=True)
    joblib.dump(RandomForestClassifier(n_estimators=10, max_leaf_nodes=100, random_state=1).fit(X[:1347], y[:1347]),
                tmp_path / "digits.joblib")
    np.save(tmp_path / "digits_X.npy", X[1347:].astype(np.int16))
    out = mpyml("verify", tmp_path / "digits.joblib", tmp_path / "digits_X.npy", "--board", "MPS2_AN385")
    assert out.returncode == 0 and "450/450 rows agree" in out.stdout, out.stdout + out.stderr


# The board runner's RAM filesystem (the emulated firmware has none), mounted over mpremote before deploying.
RAM_FS = boards.RAM_FS + "vfs.mount(_RamFS(), '/')\nimport os\nos.chdir('/')\n"


@pytest.mark.boards
def test_deploy_to_an_emulated_board(tmp_path):
    """mpyml deploy over real mpremote on the board's serial port: the arch from sys.implementation._mpy,
    the module built for it and the model copied, then imported and loaded on the board."""
    pytest.importorskip("mpremote")
    estimator, _ = family_files("tree", tmp_path)
    assert mpyml("export", estimator, tmp_path / "iris.csv").returncode == 0
    try:
        boards.firmware("MPS2_AN385")
    except build.ToolchainMissing as error:
        pytest.skip(str(error))
    with boards.serial_pty("MPS2_AN385") as port:
        mounted = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "exec", RAM_FS],
                                 capture_output=True, text=True, timeout=120)
        assert mounted.returncode == 0, mounted.stderr
        out = mpyml("deploy", "--port", port, "--resume", tmp_path / "iris.csv")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "loads armv7m modules" in out.stdout and "copied emltrees.mpy, iris.csv" in out.stdout
        assert "loaded iris.csv with emltrees" in out.stdout
        check = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "resume", "exec",
                                "import emltrees, array\nm = emltrees.new(5, 100, 100)\n"
                                "emltrees.load_model(m, 'iris.csv')\nprint('class', m.predict(array.array('f', "
                                "[6.3, 3.3, 6.0, 2.5])))"], capture_output=True, text=True, timeout=120)
    assert "class 2" in check.stdout, check.stdout + check.stderr


def test_wheel_in_a_fresh_venv(tmp_path):
    """pip wheel, a fresh venv, pip install of the wheel (dependencies from PyPI), then mpyml build --out with
    MPY_DIR, export and a prediction on the unix port with the built module, outside the repository."""
    wheels = tmp_path / "wheels"
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(wheels)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    wheel = next(wheels.glob("mpyml-*.whl"))
    names = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True).stdout
    for shipped in ("mpyml/natmods/natmod.mk", "mpyml/natmods/common/mpyml_trees.h", "mpyml/natmods/emltrees/Makefile",
                    "mpyml/portable/npyfile/npyfile.py", "mpyml/portable/har_features/har_features.py"):
        assert shipped in names
    assert ".mpy" not in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / "bin"
    out = subprocess.run([str(bin_dir / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True,
                         timeout=1200)
    assert out.returncode == 0, out.stderr
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPY_DIR", "MICROPYTHON_SRC")}
    env["PATH"] = "%s:%s" % (bin_dir, env["PATH"])
    env["MPYML_CACHE"] = str(tmp_path / "cache")

    def user(*args):
        return subprocess.run([str(bin_dir / "mpyml"), *map(str, args)], capture_output=True, text=True, cwd=work,
                              env=env, timeout=900)

    missing = user("build", "--arch", "x64", "--module", "emltrees")
    assert missing.returncode == 1 and "--micropython DIR" in missing.stderr and "Traceback" not in missing.stderr
    missing = user("demo")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stdout + missing.stderr
    assert missing.stderr.startswith("mpyml demo: no MicroPython source tree") and missing.stderr.count("\n") == 1
    built = user("build", "--arch", "x64", "--module", "emltrees", "--out", "mods",
                 "--micropython", build.micropython_tree())
    assert built.returncode == 0, built.stdout + built.stderr
    assert (work / "mods" / "x64_6.3" / "emltrees.mpy").is_file() and (work / "mods" / "x64_6.3" / "package.json").is_file()
    assert not list((venv / "lib").rglob("*.mpy")), "nothing is built into the installed package"
    estimator, _ = family_files("tree", work)
    assert user("export", estimator, "iris.csv").returncode == 0
    (work / "predict.py").write_text("import emltrees, array\nm = emltrees.new(5, 100, 100)\n"
                                     "emltrees.load_model(m, 'iris.csv')\n"
                                     "print('class', m.predict(array.array('f', [6.3, 3.3, 6.0, 2.5])))\n")
    ran = subprocess.run([str(bin_dir / "mpyml"), "run", "--mpy", "mods", "predict.py"], capture_output=True, text=True,
                         cwd=work, env=env, timeout=300)
    assert ran.returncode == 0 and "class 2" in ran.stdout, ran.stdout + ran.stderr
    verified = user("verify", estimator, "X.npy", "--mpy", "mods")
    assert verified.returncode == 0 and "150/150 rows agree" in verified.stdout, verified.stdout + verified.stderr


# ---------------------------------------------------------------- the README's commands, run as written

README_SKIPPED = {"deploy": "needs a board: test_deploy_to_an_emulated_board", "demo": "test_cli.test_demo_runs"}


def readme_commands():
    """Every `mpyml ...` line of the README's ``` blocks, without its comment."""
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S):
        for line in block.splitlines():
            if line.startswith("mpyml "):
                commands.append(line.split("  #")[0].strip())
    return commands


def test_readme_commands_run(tmp_path):
    commands = readme_commands()
    assert len(commands) >= 15 and any(c.startswith("mpyml deploy") for c in commands)
    from scipy import signal
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, estimator in {
            "model": RandomForestClassifier(5, max_depth=4, random_state=0).fit(X, y),
            "knn": KNeighborsClassifier(3).fit(X, y),
            "pipe": make_pipeline(StandardScaler(), RandomForestClassifier(4, random_state=0)).fit(X, y),
            "mlp": MLPClassifier((8,), max_iter=300, random_state=0).fit(X, y),
            "gm": GaussianMixture(2, random_state=0).fit(X),
        }.items():
            joblib.dump(estimator, tmp_path / (name + ".joblib"))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "sos.npy", signal.butter(4, 0.2, output="sos"))
    np.save(tmp_path / "signal.npy", np.random.default_rng(0).standard_normal(1000))
    (tmp_path / "predict.py").write_text("import emltrees, array\nm = emltrees.new(5, 100, 100)\n"
                                         "emltrees.load_model(m, 'model.csv')\n"
                                         "print('class', m.predict(array.array('f', [6.3, 3.3, 6.0, 2.5])))\n")
    for command in commands:
        words = command.split()
        if words[1] in README_SKIPPED:
            continue
        if "--arch" in words and not shutil.which("arm-none-eabi-gcc"):
            words = words[:words.index("--arch") + 2] + words[words.index("--out"):]  # x64 only
        out = mpyml(*words[1:], cwd=tmp_path)
        assert out.returncode == 0, "%s\n%s%s" % (command, out.stdout, out.stderr)
    assert (tmp_path / "cm.png").is_file() and (tmp_path / "mpy" / "x64_6.3" / "emltrees.mpy").is_file()
