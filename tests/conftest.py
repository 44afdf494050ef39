"""Shared fixtures: the repository root on sys.path, and small synthetic data made once per session."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
