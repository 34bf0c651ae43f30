"""Backend selection: auto / numpy / cupy, the LIQDESK_BACKEND override, broken CuPy installs."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import types

import numpy as np
import pytest

from liqdesk.core.backend import ENV_VAR, Backend, probe_cupy, resolve_request, select_backend
from liqdesk.errors import ConfigError
from tests.core import cuda_emulator


def _no_cupy(name: str) -> types.ModuleType:
    if name == "cupy":
        raise ModuleNotFoundError("No module named 'cupy'")
    return importlib.import_module(name)


def _broken_cupy(**overrides: object) -> types.ModuleType:
    """A module that imports like CuPy but fails where a machine without a usable GPU fails."""

    def no_device() -> int:
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    mod = types.ModuleType("cupy")
    mod.__version__ = "13.9.9"
    mod.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=overrides.get("count", no_device))
    )
    for k, v in overrides.items():
        if k != "count":
            setattr(mod, k, v)
    return mod


# ---------------------------------------------------------------- the request


def test_request_comes_from_the_argument_then_the_environment_then_auto():
    assert resolve_request(None, {}) == ("auto", "default")
    assert resolve_request(None, None) == ("auto", "default")
    assert resolve_request(None, {ENV_VAR: "numpy"}) == ("numpy", ENV_VAR)
    assert resolve_request("cupy", {ENV_VAR: "numpy"}) == ("cupy", "argument")
    assert resolve_request(None, {ENV_VAR: "  CuPy "}) == ("cupy", ENV_VAR)
    assert resolve_request(None, {ENV_VAR: ""}) == ("auto", "default")


def test_unknown_backend_names_say_where_they_came_from():
    with pytest.raises(ConfigError, match="unknown backend 'gpu'.*auto, numpy, cupy"):
        resolve_request("gpu")
    with pytest.raises(ConfigError, match=f"from {ENV_VAR}"):
        select_backend(environ={ENV_VAR: "opencl"})


# ---------------------------------------------------------------- CuPy absent


def test_numpy_is_always_available():
    be = select_backend("numpy", importer=_no_cupy)
    assert be.name == "numpy" and be.xp is np and not be.is_gpu and be.reason == ""
    assert be.describe().startswith("CPU: NumPy")


def test_auto_without_cupy_falls_back_to_numpy_with_a_reason():
    be = select_backend("auto", importer=_no_cupy)
    assert be.name == "numpy" and be.requested == "auto"
    assert "CuPy is not installed" in be.reason
    assert "GPU unavailable: CuPy is not installed" in be.describe()


def test_cupy_requested_but_absent_is_a_clear_config_error():
    with pytest.raises(
        ConfigError, match=r"cupy backend was requested but cannot run: CuPy is not installed.*liqdesk\[gpu\]"
    ):
        select_backend("cupy", importer=_no_cupy)


def test_environment_override_picks_the_backend_and_is_named_in_errors():
    assert select_backend(environ={ENV_VAR: "numpy"}, importer=_no_cupy).source == ENV_VAR
    with pytest.raises(ConfigError, match=f"requested \\(from {ENV_VAR}\\)"):
        select_backend(environ={ENV_VAR: "cupy"}, importer=_no_cupy)
    # an explicit argument wins over the environment
    assert select_backend("numpy", environ={ENV_VAR: "cupy"}, importer=_no_cupy).name == "numpy"


def test_real_environment_here_has_no_gpu_so_auto_is_numpy():
    try:
        import cupy  # noqa: F401
    except Exception:
        pass
    else:  # pragma: no cover - only on a CUDA machine
        pytest.skip("CuPy is installed here")
    be = select_backend()
    assert be.name == "numpy" and be.reason


# ---------------------------------------------------------------- broken CuPy installs


def test_broken_cupy_in_sys_modules_makes_auto_fall_back(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _broken_cupy())
    be = select_backend("auto")
    assert be.name == "numpy"
    assert "no usable CUDA driver or device" in be.reason and "cudaErrorNoDevice" in be.reason
    with pytest.raises(ConfigError, match="cudaErrorNoDevice"):
        select_backend("cupy")


def test_cupy_that_sees_a_device_but_cannot_compile_falls_back(monkeypatch):
    def raw_kernel(*a: object, **k: object) -> None:
        raise OSError("libnvrtc.so.13: cannot open shared object file")

    fake = _broken_cupy(
        count=lambda: 1, arange=np.arange, empty_like=np.empty_like, float64=np.float64, RawKernel=raw_kernel
    )
    monkeypatch.setitem(sys.modules, "cupy", fake)
    be = select_backend("auto")
    assert be.name == "numpy" and "test kernel failed" in be.reason and "libnvrtc" in be.reason


def test_cupy_whose_import_raises_something_odd_falls_back():
    def importer(name: str) -> types.ModuleType:
        raise RuntimeError("CUDA driver version is insufficient")

    cp, why = probe_cupy(importer)
    assert cp is None and "failed to import" in why and "insufficient" in why


def test_zero_devices_is_not_a_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _broken_cupy(count=lambda: 0))
    assert select_backend().reason == "no CUDA device found"


@pytest.mark.skipif(not cuda_emulator.compiler_available(), reason="needs g++ for the CUDA emulator")
def test_a_working_cupy_is_selected_and_described():
    fake = cuda_emulator.fake_cupy()
    be = select_backend("auto", importer=lambda name: fake)
    assert be.name == "cupy" and be.is_gpu and be.xp is fake and be.reason == ""
    assert be.device == "Emulated CUDA device, 16 GiB (CUDA 13.0, CuPy emulated)"
    assert be.describe().startswith("GPU: Emulated CUDA device")
    assert select_backend("cupy", importer=lambda name: fake).name == "cupy"
    np.testing.assert_array_equal(be.asnumpy(fake.arange(3)), [0, 1, 2])


def test_backend_object_helpers_on_numpy():
    be = Backend("numpy", np, "NumPy", "numpy")
    a = np.arange(4.0)
    assert be.asnumpy(a) is a or np.shares_memory(be.asnumpy(a), a)
    be.synchronize()  # no-op


# ---------------------------------------------------------------- no import of CuPy by core


def test_importing_core_and_the_device_path_does_not_import_cupy():
    code = (
        "import sys, liqdesk.core.backend, liqdesk.core.engine, liqdesk.core.heatmap, liqdesk.core.cuda_kernels;"
        "sys.exit(1 if 'cupy' in sys.modules else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------- the CLI option


def test_backend_option_is_parsed_and_resolved_with_the_environment(monkeypatch):
    from liqdesk.app import options

    ap = argparse.ArgumentParser()
    options.add_data_options(ap)
    assert ap.parse_args([]).backend is None
    assert ap.parse_args(["--backend", "numpy"]).backend == "numpy"
    with pytest.raises(SystemExit):
        ap.parse_args(["--backend", "opencl"])

    def backend_of(argv: list[str]) -> str:
        return options.load_inputs(ap.parse_args(["--range", "1d", *argv])).backend

    monkeypatch.delenv(ENV_VAR, raising=False)
    assert backend_of([]) == "auto"
    assert backend_of(["--backend", "numpy"]) == "numpy"
    monkeypatch.setenv(ENV_VAR, "cupy")
    assert backend_of([]) == "cupy"  # the request; selection (and its error) happens where it is used
    assert backend_of(["--backend", "numpy"]) == "numpy"
    monkeypatch.setenv(ENV_VAR, "metal")
    with pytest.raises(ConfigError, match="LIQDESK_BACKEND"):
        backend_of([])
