"""The cache key's code fingerprint follows the code that runs inside the components."""

import os
import shutil

from pipeline.code_version import PACKAGES, code_version


def _tree(tmp_path):
    import pipeline

    root = os.path.dirname(os.path.dirname(pipeline.__file__))
    for package in PACKAGES:
        shutil.copytree(f"{root}/{package}", tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_changing_a_default_in_the_preprocessing_changes_the_fingerprint(tmp_path):
    root = _tree(tmp_path)
    before = code_version(str(root))
    assert code_version(str(root)) == before  # deterministic
    config = root / "models" / "config.py"
    config.write_text(config.read_text().replace("max_categories: int = 64", "max_categories: int = 32"))
    assert code_version(str(root)) != before


def test_the_schema_and_every_component_package_count_but_caches_do_not(tmp_path):
    root = _tree(tmp_path)
    before = code_version(str(root))
    (root / "models" / "__pycache__").mkdir(exist_ok=True)
    (root / "models" / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert code_version(str(root)) == before
    (root / "data" / "schema.pbtxt").write_text((root / "data" / "schema.pbtxt").read_text() + "\n# edited\n")
    assert code_version(str(root)) != before
