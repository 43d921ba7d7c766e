"""Every option of the project's own manage.py commands says what it does, and its default when it has one."""

import argparse

import pytest
from django.core.management import get_commands, load_command_class

PROJECT_APPS = {"study", "publishing", "ingest", "studyserver"}
DJANGO_OPTIONS = {"help", "version", "verbosity", "settings", "pythonpath", "traceback", "no_color", "force_color",
                  "skip_checks"}
COMMANDS = sorted((app, name) for name, app in get_commands().items() if app in PROJECT_APPS)


def test_the_project_has_its_commands():
    names = {name for _, name in COMMANDS}
    assert {"backfill_publish", "retry_extract", "backfill_explanations", "sweep_orphan_files", "seed_demo",
            "ensure_admin", "bench_seed"} <= names


@pytest.mark.parametrize(("app", "name"), COMMANDS, ids=[name for _, name in COMMANDS])
def test_every_option_is_explained_with_its_default(app, name):
    parser = load_command_class(app, name).create_parser("manage.py", name)
    for action in parser._actions:
        if action.dest in DJANGO_OPTIONS:
            continue
        assert action.help, f"{name} {action.option_strings}: no help text"
        has_default = action.default not in (None, False, argparse.SUPPRESS) and not action.required
        if has_default:
            assert "default" in action.help.lower(), f"{name} {action.option_strings}: the default is not said"
