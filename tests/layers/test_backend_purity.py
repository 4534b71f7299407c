"""Layer code must compute through the backend's xp so it runs unchanged on cupy.

Every module in minwa/layers/ except the host-side fillers, registry, param and CPU kernels may not
name numpy at all (no ``import numpy``, no ``np.``/``numpy.``).  Checked on tokens, so
docstrings and comments may still mention it.
"""
import io
import pathlib
import tokenize

import minwa.layers

#: host-side by nature; the *_kernels.py files are numba loops that only ever run on a CPU (see _jit.py)
HOST_SIDE = {"fillers.py", "registry.py", "param.py", "_pool_kernels.py", "_lrn_kernels.py"}
LAYER_DIR = pathlib.Path(minwa.layers.__file__).parent


def numpy_uses(path):
    hits = []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string in ("numpy", "np"):
            hits.append(f"{path.name}:{tok.start[0]}: {tok.line.strip()}")
    return hits


def test_layer_modules_never_use_numpy_directly():
    files = sorted(p for p in LAYER_DIR.glob("*.py") if p.name not in HOST_SIDE)
    assert len(files) >= 17, f"expected every layer module, found {[p.name for p in files]}"
    hits = [hit for path in files for hit in numpy_uses(path)]
    assert not hits, "layer code must use the backend's xp, not numpy:\n" + "\n".join(hits)


def test_the_check_itself_catches_numpy(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""numpy in a docstring is fine."""\nimport numpy as np  # comment numpy\nx = np.zeros(3)\n')
    hits = numpy_uses(bad)
    assert len(hits) == 3  # 'numpy' and 'np' on line 2, 'np' on line 3
    assert all(":1:" not in h for h in hits)
