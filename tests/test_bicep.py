"""Offline validation of the Bicep deployment under bicep/.

No Bicep compiler can be installed here (the Bicep CLI downloads a binary; no PyPI or npm package
ships one), so this is what stands in for `bicep build`:

* every .bicep file parses (pycep-parser, the parser checkov itself uses);
* every module path exists, every param a module call passes is declared by the module, and every
  required module param is passed;
* the parameter files only set parameters main.bicep declares, with allowed values, and the
  required parameters they leave out are the ones bicep/README.md's deploy command passes;
* the function app sets every setting of local.settings.sample.json (bar the listed exceptions),
  with production values where it matters;
* checkov's Bicep checks report no failure, and every suppression is an inline
  `//checkov:skip=CKV_...:<justification>` comment with a real justification.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any, cast

import pytest

ROOT = Path(__file__).resolve().parent.parent
BICEP = ROOT / "bicep"
MAIN = BICEP / "main.bicep"
FUNCTION_APP = BICEP / "modules" / "functionapp.bicep"
PARAM_FILES = sorted((BICEP / "params").glob("*.parameters.json"))
BICEP_FILES = sorted(BICEP.rglob("*.bicep"))

HAVE_PYCEP = importlib.util.find_spec("pycep") is not None
HAVE_CHECKOV = importlib.util.find_spec("checkov") is not None
needs_pycep = pytest.mark.skipif(
    not HAVE_PYCEP, reason="pycep-parser is not installed (pip install -r bicep/requirements.txt)"
)
needs_checkov = pytest.mark.skipif(
    not HAVE_CHECKOV, reason="checkov is not installed (pip install -r bicep/requirements.txt)"
)

# Settings of local.settings.sample.json the function app deliberately does not set, and why.
NOT_APP_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME": "Flex Consumption takes the runtime from functionAppConfig.runtime and rejects this app setting",
    "AzureWebJobsStorage": "replaced by the identity-based AzureWebJobsStorage__accountName/__credential/__clientId settings",
    "AzureWebJobsFeatureFlags": "EnableWorkerIndexing is the default for the Python v2 programming model in Azure; local-only",
    "DATABASE_ADMIN_URL": "migrations run as the PostgreSQL Entra administrator from an operator/CI machine, never from the app",
    "STORAGE_CONNECTION_STRING": "account-key auth for Azurite only; shared keys are disabled in Azure, the app uses STORAGE_ACCOUNT_URL",
    "COSMOS_KEY": "the local emulator's key; the Cosmos account has local auth disabled and the app uses its identity",
    "OPENAI_API_KEY": "read from Key Vault secret openai-api-key by shared/config.py when CHAT_PROVIDER=openai; a Key Vault reference to a secret that does not exist would hand the app the literal reference",
    "ANTHROPIC_API_KEY": "read from Key Vault secret anthropic-api-key by shared/config.py when CHAT_PROVIDER=anthropic (same reason as OPENAI_API_KEY)",
    "CHAT_LOCAL_SECRETS_DIR": "local files for users' own provider keys are for development only; Azure uses CHAT_KEY_STORE=keyvault",
    "FOLIO_SERVICES_FACTORY": "composes the local host's stand-ins under `func start`; unset in Azure, the production services are built",
}

# Production values the app relies on (the sample file holds the local ones).
REQUIRED_VALUES = {
    "FOLIO_DEV_MODE": "false",
    "DATABASE_ENTRA_AUTH": "true",
    "AzureWebJobsStorage__credential": "managedidentity",
    "ServiceBusConnection__credential": "managedidentity",
    "UPLOAD_CONTAINER": None,
    "INDEX_QUEUE_NAME": None,
    "INDEX_QUEUE_BACKEND": "servicebus",
    "COSMOS_DATABASE": None,
    "COSMOS_CHAT_CONTAINER": None,
    "CHAT_KEY_STORE": "keyvault",
    "EMBEDDING_PROVIDER": "azure-openai",
    "EMBEDDING_MODEL": "text-embedding-3-small",
    "EMBEDDING_DIM": "1536",
}
# Settings that must exist beyond the sample file: identity-based connections and next features.
EXTRA_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__clientId",
    "ServiceBusConnection__fullyQualifiedNamespace",
    "ServiceBusConnection__clientId",
    "AZURE_CLIENT_ID",
    "STORAGE_ACCOUNT_URL",
    "SERVICEBUS_NAMESPACE",
    "COSMOS_ENDPOINT",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_EMBEDDING_DEPLOYMENT",
    "CHAT_PROVIDER",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

SKIP_COMMENT = re.compile(r"checkov:skip=(?P<id>[A-Za-z0-9_]+)(?::(?P<why>.*))?")
CHECK_ID = re.compile(r"^CKV2?_[A-Z0-9]+_\d+$")


@cache
def parse(path: Path) -> dict[str, Any]:
    from pycep import BicepParser

    return cast("dict[str, Any]", BicepParser().parse(file_path=path))  # read as plain JSON


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _required_params(template: dict[str, Any]) -> set[str]:
    return {name for name, p in template.get("parameters", {}).items() if p.get("default") is None}


def _allowed(param: dict[str, Any]) -> list[Any] | None:
    for decorator in param.get("decorators", []):
        if decorator.get("type") == "allowed":
            return list(decorator["argument"])
    return None


def _app_settings() -> dict[str, Any]:
    return parse(FUNCTION_APP)["variables"]["appSettings"]["value"]


def test_bicep_files_exist() -> None:
    assert MAIN.is_file(), "bicep/main.bicep is missing"
    assert len(BICEP_FILES) > 1, "expected main.bicep plus modules under bicep/modules/"
    assert PARAM_FILES, "expected bicep/params/<env>.parameters.json files"


@needs_pycep
@pytest.mark.parametrize("path", BICEP_FILES, ids=_rel)
def test_bicep_file_parses(path: Path) -> None:
    try:
        parse(path)
    except Exception as exc:  # the parser's own message names line and column
        pytest.fail(f"{_rel(path)} does not parse: {type(exc).__name__}: {exc}")


@needs_pycep
def test_main_is_resource_group_scoped() -> None:
    scope = parse(MAIN).get("globals", {}).get("scope", {})
    assert scope.get("value", "resourceGroup") == "resourceGroup", scope


@needs_pycep
@pytest.mark.parametrize("path", BICEP_FILES, ids=_rel)
def test_modules_exist_and_get_their_params(path: Path) -> None:
    problems = []
    for name, module in parse(path).get("modules", {}).items():
        target = (path.parent / module["detail"]["path"]).resolve()
        if module.get("type") != "local" or not target.is_file():
            problems.append(f"module {name}: {module['detail']['path']} does not exist")
            continue
        declared = parse(target).get("parameters", {})
        config = module["config"]
        while "params" not in config and isinstance(config.get("config"), dict):
            config = config["config"]  # conditional (`if`) and loop (`for`) modules wrap their body
        passed = set(config.get("params", {}))
        for extra in sorted(passed - set(declared)):
            problems.append(f"module {name}: passes {extra!r}, which {target.name} does not declare")
        for missing in sorted(_required_params(parse(target)) - passed):
            problems.append(f"module {name}: does not pass required param {missing!r} of {target.name}")
    assert not problems, f"{_rel(path)}:\n" + "\n".join(problems)


@needs_pycep
@pytest.mark.parametrize("path", PARAM_FILES, ids=_rel)
def test_parameter_file_matches_main(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data.get("contentVersion") == "1.0.0.0"
    declared = parse(MAIN)["parameters"]
    values = data["parameters"]
    problems = []
    for name, entry in values.items():
        if name not in declared:
            problems.append(f"{name} is not a parameter of main.bicep")
            continue
        allowed = _allowed(declared[name])
        if allowed is not None and entry.get("value") not in allowed:
            problems.append(f"{name}={entry.get('value')!r} is not one of {allowed}")
    env = path.name.split(".")[0]
    if values.get("environmentName", {}).get("value") != env:
        problems.append(f"environmentName should be {env!r} in {path.name}")
    # Required parameters left out of the file must be supplied by the documented deploy command.
    readme = (BICEP / "README.md").read_text(encoding="utf-8")
    for name in sorted(_required_params(parse(MAIN)) - set(values)):
        if f"{name}=" not in readme:
            problems.append(f"required parameter {name} is neither in {path.name} nor in bicep/README.md's command")
    assert not problems, f"{_rel(path)}:\n" + "\n".join(problems)


def test_prod_parameters_are_production_grade() -> None:
    prod = json.loads((BICEP / "params" / "prod.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert prod["enablePrivateNetworking"]["value"] is True, "prod PostgreSQL must be VNet-injected (no public access)"
    assert prod["postgresGeoRedundantBackup"]["value"] is True
    assert prod["postgresPgBouncer"]["value"] is True
    assert prod["postgresFirewallRules"]["value"] == []


@needs_pycep
def test_function_app_sets_every_local_setting() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    settings = _app_settings()
    missing = sorted(k for k in sample if k not in settings and k not in NOT_APP_SETTINGS)
    assert not missing, f"functionapp.bicep does not set {missing} (or list them in NOT_APP_SETTINGS with a reason)"
    wrongly_set = sorted(k for k in NOT_APP_SETTINGS if k in settings)
    assert not wrongly_set, f"functionapp.bicep sets {wrongly_set}, which NOT_APP_SETTINGS says it must not"
    assert all(reason.strip() for reason in NOT_APP_SETTINGS.values())


@needs_pycep
def test_function_app_production_values() -> None:
    settings = _app_settings()
    missing = sorted((set(REQUIRED_VALUES) | EXTRA_SETTINGS) - set(settings))
    assert not missing, f"functionapp.bicep does not set {missing}"
    wrong = {k: settings[k] for k, v in REQUIRED_VALUES.items() if v is not None and settings[k] != v}
    assert not wrong, f"unexpected production values: {wrong}"
    params = parse(FUNCTION_APP)["parameters"]
    assert settings["INDEX_QUEUE_NAME"] == "indexQueueName" and params["indexQueueName"]["default"] == "index-jobs"
    assert settings["UPLOAD_CONTAINER"] == "uploadContainerName"
    url = settings["DATABASE_URL"]
    assert isinstance(url, str) and "sslmode=require" in url and "${identityName}@" in url, url
    # Users' own chat keys go to their own vault, never to the read-only vault of the app's secrets.
    assert settings["CHAT_KEY_VAULT_URL"] == "chatKeyVaultUri" and settings["KEY_VAULT_URL"] == "keyVaultUri"
    for key in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"):
        assert str(settings[key]).startswith("@Microsoft.KeyVault(SecretUri="), f"{key} must be a Key Vault reference"
    # DATABASE_CONTEXT_KEY is read from KEY_VAULT_URL's vault by name (postprovision.sh creates it there):
    # a Key Vault reference resolved before the secret exists would hand the app its own text as the key.
    assert "DATABASE_CONTEXT_KEY" not in settings
    text = FUNCTION_APP.read_text(encoding="utf-8")
    assert "'FC1'" in text and "'FlexConsumption'" in text and "'functionapp,linux'" in text


@needs_pycep
def test_pgbouncer_port_and_prepares_follow_each_other() -> None:
    postgres = (BICEP / "modules" / "postgres.bicep").read_text(encoding="utf-8")
    assert "pgBouncerEnabled ? 6432 : 5432" in postgres
    condition = _app_settings()["DATABASE_SERVER_PREPARE"]["operator"]["operands"]
    assert (condition["condition"], condition["true_value"]) == ("postgresPooled", "false")


def _suppressions() -> list[tuple[Path, int, str, str]]:
    found = []
    for path in BICEP_FILES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match:
                found.append((path, number, match.group("id"), (match.group("why") or "").strip()))
    return found


def test_every_checkov_suppression_is_justified() -> None:
    problems = []
    for path, number, check_id, why in _suppressions():
        line = path.read_text(encoding="utf-8").splitlines()[number - 1].lstrip()
        where = f"{_rel(path)}:{number}"
        if not line.startswith("//"):
            problems.append(f"{where}: the suppression must be an inline // comment")
        if not CHECK_ID.match(check_id):
            problems.append(f"{where}: {check_id!r} is not a checkov check id")
        if len(why) < 20:
            problems.append(f"{where}: {check_id} needs a real justification after the colon")
    assert not problems, "\n".join(problems)


@needs_checkov
def test_checkov_reports_no_failed_checks(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "checkov.main",
        "-d",
        str(BICEP),
        "--framework",
        "bicep",
        "--compact",
        "--quiet",
        "-o",
        "json",
        # Offline: no policy metadata from the vendor's API (it would only add links and severities).
        "--skip-download",
    ]
    env = dict(os.environ, LOG_LEVEL="WARNING", BC_SKIP_MAPPING="TRUE")
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}):\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} in {c['file_path']}"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov failed checks (fix them, or suppress inline with a justification):\n" + "\n".join(
        failed
    )
    assert summary["parsing_errors"] == 0, f"checkov could not parse some files: {summary}"
    assert summary["passed"] > 0, f"checkov checked nothing: {summary}"
    # Each suppression comment sits in exactly one resource: a count mismatch means a stale one.
    assert summary["skipped"] == len(_suppressions()), (
        f"checkov applied {summary['skipped']} suppressions but the files hold {len(_suppressions())}: "
        "remove suppressions for checks that no longer fire"
    )


def _module_params(name: str) -> dict[str, Any]:
    config = parse(MAIN)["modules"][name]["config"]
    while "params" not in config and isinstance(config.get("config"), dict):
        config = config["config"]
    return cast("dict[str, Any]", config["params"])


@needs_pycep
def test_no_static_web_apps_linked_backend() -> None:
    """Static Web Apps cannot link a Flex Consumption app (and would cut requests at 45 s, buffer
    streams, overwrite Authorization): the web app calls the function app directly."""
    types = {r["type"] for path in BICEP_FILES for r in parse(path).get("resources", {}).values()}
    assert not any(t.lower().startswith("microsoft.web/staticsites/") for t in types), types
    assert not (BICEP / "modules" / "staticwebapp-backend.bicep").exists()


@needs_pycep
def test_api_and_blob_cors_allow_exactly_the_web_app_origins() -> None:
    cors = parse(MAIN)["variables"]["corsOrigins"]["value"]["function"]
    assert cors["type"] == "concat"
    assert cors["parameters"] == {
        "arg_1": ["https://${staticWebApp.outputs.defaultHostname}"],
        "arg_2": "additionalCorsOrigins",
    }
    assert _module_params("functionApp")["corsAllowedOrigins"] == "corsOrigins"
    assert _module_params("storage")["corsAllowedOrigins"] == "corsOrigins"
    site = parse(FUNCTION_APP)["resources"]["site"]["config"]["properties"]["siteConfig"]["cors"]
    assert site == {"allowedOrigins": "corsAllowedOrigins", "supportCredentials": False}
    storage = parse(BICEP / "modules" / "storage.bicep")["resources"]["blobService"]["config"]["properties"]
    (rule,) = storage["cors"]["corsRules"]
    assert rule["allowedOrigins"] == "corsAllowedOrigins" and rule["allowedMethods"] == [
        "GET",
        "HEAD",
        "PUT",
        "OPTIONS",
    ]
    # The same headers as the local rule (Azurite), which the browser tests exercise.
    local = re.search(r"allowed_headers=\[([^\]]*)\]", (ROOT / "shared" / "storage.py").read_text(encoding="utf-8"))
    assert local, "shared/storage.py allow_browser_uploads no longer lists allowed_headers"
    assert sorted(rule["allowedHeaders"]) == sorted(re.findall(r'"([^"]+)"', local.group(1)))


@needs_pycep
def test_app_service_authentication_stays_off() -> None:
    """Authentication is in code; the platform's would block Event Grid's system-key webhook."""
    types = {r["type"].lower() for path in BICEP_FILES for r in parse(path).get("resources", {}).values()}
    assert not types & {"microsoft.web/sites/config", "microsoft.web/sites/config/authsettingsv2"}, types


@needs_pycep
def test_service_bus_trigger_can_scale_and_only_the_index_queue_exists() -> None:
    roles = parse(BICEP / "modules" / "roles.bicep")
    owner = roles["variables"]["roles"]["value"]["serviceBusDataOwner"]
    assert owner == "090c5cfd-751d-490a-894a-3ce6f1109419"  # Azure Service Bus Data Owner
    scopes = {
        r["config"]["scope"]
        for r in roles["resources"].values()
        if r["type"] == "Microsoft.Authorization/roleAssignments" and "serviceBusDataOwner" in json.dumps(r["config"])
    }
    assert scopes == {"serviceBus"}
    queues = parse(BICEP / "modules" / "servicebus.bicep")["parameters"]["queueNames"]["default"]
    assert queues == ["index-jobs"]
    assert "BILLING_QUEUE_NAME" not in _app_settings()


# --- azd: azure.yaml, its hooks and the parameters they generate ------------------------------------
AZURE_YAML = ROOT / "azure.yaml"
HOOKS = BICEP / "hooks"
AZD_SCHEMA = (
    Path(os.environ.get("FOLIO_AZURE_TYPES", ROOT.parent / "shared" / "azure-types")) / "azd" / "azure.yaml.schema.json"
)
# What azd itself puts in a hook's environment (besides main.bicep's outputs and `azd env set` values).
AZD_PROVIDED = {
    "AZURE_ENV_NAME",
    "AZURE_LOCATION",
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_RESOURCE_GROUP",
    "AZURE_PRINCIPAL_ID",
}
# What the operator sets once with `azd env set` before `azd up` (docs/deploy.md says so).
OPERATOR_SET = {"AZURE_OPENAI_ENDPOINT"}


def _azd_problems(document: Any) -> list[str]:
    """azure.yaml checked against azd's own JSON schema, offline. The schema refers to remote schemas
    for Azure AI hosts only; they are read as empty (Folio uses the function and staticwebapp hosts)."""
    import jsonschema  # type: ignore[import-untyped]
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT201909

    schema = json.loads(AZD_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)

    def empty(uri: str) -> Resource[Any]:
        return Resource.from_contents({}, default_specification=DRAFT201909)

    registry: Registry[Any] = Registry(retrieve=empty)  # type: ignore[call-arg]
    validator = validator_class(schema, registry=registry)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def _azure_yaml() -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped]

    return cast("dict[str, Any]", yaml.safe_load(AZURE_YAML.read_text(encoding="utf-8")))


def _hook_scripts(document: dict[str, Any]) -> list[tuple[Path, str]]:
    """(script path, arguments) of every hook, project- and service-level."""
    found = []
    levels = [(ROOT, document.get("hooks", {}))]
    levels += [(ROOT / s.get("project", "."), s.get("hooks", {})) for s in document["services"].values()]
    for base, hooks in levels:
        for hook in hooks.values():
            for entry in hook if isinstance(hook, list) else [hook]:
                run = entry.get("posix", entry)["run"].split(" ", 1)
                found.append(((base / run[0]).resolve(), run[1] if len(run) > 1 else ""))
    return found


@pytest.mark.skipif(not AZD_SCHEMA.is_file(), reason=f"azd's schema not found at {AZD_SCHEMA}")
def test_azure_yaml_is_valid_for_azd() -> None:
    document = _azure_yaml()
    assert not _azd_problems(document)
    assert document["infra"] == {"provider": "bicep", "path": "bicep", "module": "main"}
    assert {name: s["host"] for name, s in document["services"].items()} == {"api": "function", "web": "staticwebapp"}
    # The same check rejects what azd would: a misspelt hook, a service without its host.
    assert _azd_problems({**document, "hooks": {"postdeploi": {"run": "x", "shell": "sh"}}})
    assert _azd_problems({**document, "services": {"api": {"project": ".", "language": "python"}}})


@needs_pycep
def test_azd_finds_each_service_by_its_tag() -> None:
    """azd deploys a service to the resource tagged azd-service-name=<service>."""
    text = MAIN.read_text(encoding="utf-8")
    for service in _azure_yaml()["services"]:
        assert text.count(f"'azd-service-name': '{service}'") == 1, service


def test_hooks_exist_and_read_only_what_they_are_given() -> None:
    scripts = _hook_scripts(_azure_yaml())
    assert {p.name for p, _ in scripts} == {"preprovision.sh", "postprovision.sh", "postdeploy.sh", "web-config.sh"}
    outputs = set(re.findall(r"^output (\w+) ", MAIN.read_text(encoding="utf-8"), re.MULTILINE))
    set_by_hooks = {
        name for path in HOOKS.glob("*.sh") for name in re.findall(r"env_set (\w+)", path.read_text(encoding="utf-8"))
    }
    for path, _ in scripts:
        assert path.is_file() and os.access(path, os.X_OK), f"{path} is missing or not executable"
        text = path.read_text(encoding="utf-8")
        assert text.startswith("#!/bin/sh\n") and "set -eu" in text, path.name
        required = set(re.findall(r"\$\{(\w+):\?", text))
        unknown = required - outputs - set_by_hooks - AZD_PROVIDED - OPERATOR_SET
        assert not unknown, f"{path.name} needs {sorted(unknown)}, which nothing provides"


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)"
)
def test_hooks_pass_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", "-s", "sh", *map(str, sorted(HOOKS.glob("*.sh")))], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def _parameters_module() -> Any:
    spec = importlib.util.spec_from_file_location("folio_azd_parameters", HOOKS / "parameters.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_pycep
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_azd_parameters_are_the_environment_file_plus_azd_values(env: str) -> None:
    environ = {
        "FOLIO_ENVIRONMENT": env,
        "POSTGRES_ADMIN_OBJECT_ID": "3f1d5c8e-9a41-4a55-8e43-0e9f1b7f2a10",
        "POSTGRES_ADMIN_NAME": "ann@contoso.example",
        "POSTGRES_ADMIN_TYPE": "User",
        "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com/",
        "AZURE_PRINCIPAL_ID": "9a0c2f4e-1b7d-4c55-8d2e-6f1a3b5c7d90",
        "AUTH_CLIENT_ID": "5b2e8c1d-3f4a-4b6c-9d7e-0a1b2c3d4e5f",
        "FOLIO_EXTRA_WEB_ORIGINS": "https://docs.contoso.example, https://folio.contoso.example",
    }
    document = _parameters_module().build(BICEP, environ)
    values = {k: v["value"] for k, v in document["parameters"].items()}
    source = json.loads((BICEP / "params" / f"{env}.parameters.json").read_text(encoding="utf-8"))["parameters"]
    kept = set(source) - _AZD_OVERRIDES
    assert {k: values[k] for k in kept} == {k: source[k]["value"] for k in kept}
    declared = parse(MAIN)["parameters"]
    assert set(values) <= set(declared), sorted(set(values) - set(declared))
    assert _required_params(parse(MAIN)) <= set(values)
    assert values["authAudience"] == environ["AUTH_CLIENT_ID"]
    assert values["postgresAdminPrincipalType"] == "User"
    assert values["additionalCorsOrigins"] == ["https://docs.contoso.example", "https://folio.contoso.example"]
    with pytest.raises(SystemExit):
        _parameters_module().build(BICEP, {**environ, "FOLIO_ENVIRONMENT": "staging"})


_AZD_OVERRIDES = {"postgresAdminPrincipalType"}


def test_web_config_hook_writes_what_the_web_app_reads(tmp_path: Path) -> None:
    """dist/config.json as frontend/src/config.ts reads it: the API's origin and the registration."""
    client_id = "5b2e8c1d-3f4a-4b6c-9d7e-0a1b2c3d4e5f"
    env = {"PATH": os.environ["PATH"], "API_BASE_URL": "https://func-folio-dev-abc123.azurewebsites.net/api"}
    result = subprocess.run(
        [str(HOOKS / "web-config.sh")], cwd=tmp_path, env={**env, "AUTH_CLIENT_ID": client_id}, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "dist" / "config.json").read_text(encoding="utf-8"))
    assert config == {
        "apiBase": env["API_BASE_URL"],
        "auth": "entra",
        "entra": {
            "clientId": client_id,
            "authority": "https://login.microsoftonline.com/organizations",
            "apiScope": f"api://{client_id}/access_as_user",
            "knownAuthorities": [],
        },
    }
    # Without the app registration it refuses rather than deploy a web app nobody can sign in to.
    assert subprocess.run([str(HOOKS / "web-config.sh")], cwd=tmp_path, env=env, capture_output=True).returncode != 0


# The hooks run end to end against stand-ins for the `az` and `azd` executables: they record each
# call, answer the few queries the hooks make, and reject a Graph request body that is not JSON.
FAKE_CLI = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *args]) + "\\n")
if os.path.basename(sys.argv[0]) == "azd":
    sys.exit(0)
joined = " ".join(args)
# Key Vault secrets live in a JSON file next to the log, so a second run sees what the first stored.
vault_file = os.environ["FAKE_LOG"] + ".vault.json"
vault = json.load(open(vault_file)) if os.path.exists(vault_file) else {}
if args[:2] == ["keyvault", "secret"]:
    name = args[args.index("--name") + 1] if "--name" in args else None
    if args[2] == "list":
        wanted = args[args.index("--query") + 1].split("name=='", 1)[1].split("'", 1)[0]
        print(sum(1 for stored in vault if stored == wanted))
    elif args[2] == "set":
        with open(args[args.index("--file") + 1], encoding="utf-8") as f:
            vault[name] = f.read()
        json.dump(vault, open(vault_file, "w"))
    elif args[2] == "show" and args[args.index("--query") + 1] == "value":
        if name not in vault:
            sys.exit("(SecretNotFound) A secret with (name/id) %s was not found in this key vault." % name)
        print(vault[name])
    sys.exit(0)
if "--body" in args:
    json.loads(args[args.index("--body") + 1])  # a malformed body fails the hook
answers = {
    "ad signed-in-user show --query id": "9a0c2f4e-1b7d-4c55-8d2e-6f1a3b5c7d90",
    "ad signed-in-user show --query userPrincipalName": "ann@contoso.example",
    "ad app create": "5b2e8c1d-3f4a-4b6c-9d7e-0a1b2c3d4e5f",
    "ad app show --id 5b2e8c1d-3f4a-4b6c-9d7e-0a1b2c3d4e5f --query id": "0f0e0d0c-0b0a-4909-8807-060504030201",
}
for prefix, answer in answers.items():
    if joined.startswith(prefix):
        print(answer)
"""


def _run_hook(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[Path, list[list[Any]], str]:
    """Run a hook of a copy of bicep/ with the stand-ins first on PATH: (project, every call so far, output)."""
    project = tmp_path / "project"
    if not project.exists():
        shutil.copytree(BICEP, project / "bicep", ignore=shutil.ignore_patterns("main.parameters.json"))
        tools = tmp_path / "bin"
        tools.mkdir()
        for tool in ("az", "azd"):
            (tools / tool).write_text(FAKE_CLI.replace("{python}", sys.executable), encoding="utf-8")
            (tools / tool).chmod(0o755)
    log = tmp_path / "calls.jsonl"
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run(
        [str(project / "bicep" / "hooks" / name)],
        env={"PATH": path, "FAKE_LOG": str(log), **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    calls = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    return project, calls, result.stdout + result.stderr


def test_preprovision_registers_the_app_and_writes_the_parameters(tmp_path: Path) -> None:
    env = {"AZURE_ENV_NAME": "folio-dev", "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com/"}
    project, calls, _ = _run_hook(tmp_path, "preprovision.sh", {**env, "AZURE_PRINCIPAL_ID": "9a0c2f4e"})
    created = [c for c in calls if c[1:4] == ["ad", "app", "create"]]
    assert created and created[0][created[0].index("--sign-in-audience") + 1] == "AzureADMultipleOrgs"
    (patch,) = [c for c in calls if c[1:3] == ["rest", "--method"]]
    body = json.loads(patch[patch.index("--body") + 1])
    assert body["signInAudience"] == "AzureADMultipleOrgs"
    assert body["identifierUris"] == ["api://5b2e8c1d-3f4a-4b6c-9d7e-0a1b2c3d4e5f"]
    assert body["api"]["requestedAccessTokenVersion"] == 2
    assert [s["value"] for s in body["api"]["oauth2PermissionScopes"]] == ["access_as_user"]
    stored = {c[3]: c[4] for c in calls if c[:3] == ["azd", "env", "set"]}
    assert stored["AUTH_CLIENT_ID"] == "5b2e8c1d-3f4a-4b6c-9d7e-0a1b2c3d4e5f"
    assert stored["POSTGRES_ADMIN_NAME"] == "ann@contoso.example" and stored["FOLIO_ENVIRONMENT"] == "dev"
    written = json.loads((project / "bicep" / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert written["authAudience"]["value"] == "5b2e8c1d-3f4a-4b6c-9d7e-0a1b2c3d4e5f"
    assert written["postgresAdminObjectId"]["value"] == "9a0c2f4e-1b7d-4c55-8d2e-6f1a3b5c7d90"
    assert written["environmentName"]["value"] == "dev" and written["deployerPrincipalId"]["value"] == "9a0c2f4e"


def test_postdeploy_creates_the_event_subscription_with_the_module(tmp_path: Path) -> None:
    outputs = {
        "AZURE_RESOURCE_GROUP": "rg-folio-dev",
        "EVENT_GRID_TOPIC_NAME": "evgt-folio-dev-abc123",
        "STORAGE_ACCOUNT_ID": "/subscriptions/s/resourceGroups/rg-folio-dev/providers/Microsoft.Storage/storageAccounts/st",
        "FUNCTION_APP_ID": "/subscriptions/s/resourceGroups/rg-folio-dev/providers/Microsoft.Web/sites/func",
        "FOLIO_LOCATION": "westeurope",
        "FOLIO_TAGS": '{"app":"folio","environment":"dev"}',
        "WEB_APP_URL": "https://swa-folio-dev-abc123.azurestaticapps.net",
    }
    _, calls, _ = _run_hook(tmp_path, "postdeploy.sh", outputs)
    (deploy,) = calls
    assert deploy[1:4] == ["deployment", "group", "create"]
    assert deploy[deploy.index("--template-file") + 1].endswith("bicep/modules/eventgrid.bicep")
    given = dict(a.split("=", 1) for a in deploy[deploy.index("--parameters") + 1 :] if "=" in a)
    assert given["deployEventSubscription"] == "true" and given["tags"] == outputs["FOLIO_TAGS"]
    declared = parse(BICEP / "modules" / "eventgrid.bicep")["parameters"]
    assert set(given) <= set(declared) and _required_params(parse(BICEP / "modules" / "eventgrid.bicep")) <= set(given)


# Stands in for the deployer's Python: runs `-c` snippets for real, records every other call with the
# DATABASE_CONTEXT_KEY it was given (postgres_app_role.py, `-m shared.cli migrate`).
FAKE_PYTHON = """#!{python}
import json, os, sys
if sys.argv[1:2] == ["-c"]:
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(["python", *sys.argv[1:], {"DATABASE_CONTEXT_KEY": os.environ.get("DATABASE_CONTEXT_KEY")}]) + "\\n")
"""


@needs_pycep
def test_postprovision_creates_the_context_key_once_and_migrates_with_it(tmp_path: Path) -> None:
    """DATABASE_CONTEXT_KEY in Azure: the hook creates the Key Vault secret the app reads by name once,
    never prints it or puts it on a command line, and gives it to the migration process only."""
    import base64

    from shared.config import key_vault_secret_name

    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON.replace("{python}", sys.executable), encoding="utf-8")
    python.chmod(0o755)
    env = {
        "AUTH_CLIENT_ID": "5b2e8c1d-3f4a-4b6c-9d7e-0a1b2c3d4e5f",
        "WEB_APP_URL": "https://swa-folio-dev-abc123.azurestaticapps.net",
        "KEY_VAULT_NAME": "kv-folio-dev-abc123",
        "POSTGRES_SERVER_NAME": "psql-folio-dev-abc123",
        "POSTGRES_FQDN": "psql-folio-dev-abc123.postgres.database.azure.com",
        "POSTGRES_ADMIN_NAME": "ann@contoso.example",
        "APP_IDENTITY_NAME": "id-folio-dev-abc123",
        "AZURE_RESOURCE_GROUP": "rg-folio-dev",
        "FOLIO_DEPLOYER_IP": "203.0.113.7",
        "FOLIO_PYTHON": str(python),
    }
    _, first, first_output = _run_hook(tmp_path, "postprovision.sh", env)
    _, calls, second_output = _run_hook(tmp_path, "postprovision.sh", env)
    second = calls[len(first) :]
    vault = json.loads((tmp_path / "calls.jsonl.vault.json").read_text(encoding="utf-8"))
    name = key_vault_secret_name("DATABASE_CONTEXT_KEY")
    assert list(vault) == [name]
    key = vault[name]
    assert len(base64.b64decode(key, validate=True)) >= 32

    def sets(run: list[list[Any]]) -> list[list[Any]]:
        return [c for c in run if c[:4] == ["az", "keyvault", "secret", "set"]]

    (created,) = sets(first)
    assert not sets(second)  # an existing key is kept: the database and the running app hold it
    assert created[created.index("--vault-name") + 1] == env["KEY_VAULT_NAME"]
    assert "--value" not in created and created[created.index("--output") + 1] == "none"
    assert not Path(created[created.index("--file") + 1]).exists()  # the temporary key file is gone
    for run in (first, second):
        given = {" ".join(c[1:-1]): c[-1]["DATABASE_CONTEXT_KEY"] for c in run if c[0] == "python"}
        (migrate,) = [v for k, v in given.items() if k == "-m shared.cli migrate"]
        (app_role,) = [v for k, v in given.items() if "postgres_app_role.py " in k]
        assert migrate == key and app_role is None
        # Never echoed, never on an az/azd command line (where `ps` would show it).
        assert not [c for c in run if c[0] != "python" and key in json.dumps(c)]
    assert key not in first_output and key not in second_output
    assert "created secret" in first_output and "exists, kept" in second_output
