"""The dbt project as an Astronomer Cosmos task group, rendered from the manifest.

``make`` builds ``dbt_project/target/manifest.json`` (``crm dbt-parse``), so
parsing the DAG file does not run ``dbt ls`` (about 7 s). Each model runs with
``dbt build`` semantics: the model, then its tests (TestBehavior.AFTER_EACH),
so a failed test stops everything downstream of it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from crm_pipeline.settings import get_settings

AS_OF_TEMPLATE = "{{ ti.xcom_pull(task_ids='resolve_as_of') }}"


def _connection_env() -> dict[str, str]:
    """CRM_DBT_* for the dbt profile, from CRM_WAREHOUSE_URL or the embedded server's port file.

    Read at parse time without touching the database.
    """
    from crm_pipeline.transform.dbt import dbt_env

    settings = get_settings()
    if settings.warehouse_url:
        url = settings.warehouse_url
    else:
        port_file = settings.home / "pg" / "port"
        port = port_file.read_text().strip() if port_file.exists() else str(settings.embedded_pg_port)
        url = f"postgresql://postgres@127.0.0.1:{port}/crm"
    return dbt_env(url)


def dbt_task_group(group_id: str = "transform"):
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    from crm_pipeline.transform.dbt import shop_timezones

    settings = get_settings()
    project = settings.dbt_project_dir
    manifest = project / "target" / "manifest.json"
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} is missing: run `make manifest` (or `crm dbt-parse`) first")
    dbt_bin = Path(sys.executable).with_name("dbt")
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(dbt_project_path=project, manifest_path=manifest, project_name="crm",
                                     partial_parse=True),
        profile_config=ProfileConfig(profile_name="crm", target_name="warehouse",
                                     profiles_yml_filepath=project / "profiles.yml"),
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                         invocation_mode=InvocationMode.DBT_RUNNER,
                                         dbt_executable_path=str(dbt_bin) if dbt_bin.exists() else "dbt"),
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.BUILD,
                                   # a test over two models (relationships) runs once both are built,
                                   # in its own task; inline it would run before its other parent exists
                                   should_detach_multiple_parents_tests=True,
                                   emit_datasets=False),
        operator_args={
            "install_deps": False,
            "vars": {"as_of_date": AS_OF_TEMPLATE, "default_timezone": settings.timezone,
                     "shop_timezones": shop_timezones()},
            "env": {**_connection_env(), "PATH": os.environ.get("PATH", "")},
            "append_env": True,
        },
    )
