"""Write bicep/main.parameters.json for azd from params/<FOLIO_ENVIRONMENT>.parameters.json.

azd (preprovision.sh) passes main.bicep the parameter file `main.parameters.json`. Rather than a
second copy of the per-environment values, it is generated before each provisioning: the checked-in
dev or prod file, plus what only the azd environment knows (PostgreSQL's Entra administrator, the
Azure OpenAI endpoint, the app registration, who deploys). The output is git-ignored.

Usage: parameters.py [<bicep directory>]   (reads the values below from the environment)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# main.bicep parameter <- azd environment variable (unset or empty: the file's or main.bicep's value).
FROM_ENVIRONMENT = {
    "postgresAdminObjectId": "POSTGRES_ADMIN_OBJECT_ID",
    "postgresAdminPrincipalName": "POSTGRES_ADMIN_NAME",
    "postgresAdminPrincipalType": "POSTGRES_ADMIN_TYPE",
    "azureOpenAiEndpoint": "AZURE_OPENAI_ENDPOINT",
    "azureOpenAiAccountName": "AZURE_OPENAI_ACCOUNT_NAME",
    "deployerPrincipalId": "AZURE_PRINCIPAL_ID",
    "deployerPrincipalType": "AZURE_PRINCIPAL_TYPE",
    "authAudience": "AUTH_CLIENT_ID",
    "authAllowedTenants": "AUTH_ALLOWED_TENANTS",
    "additionalCorsOrigins": "FOLIO_EXTRA_WEB_ORIGINS",  # comma-separated custom domains of the web app
}


def build(bicep: Path, environ: dict[str, str]) -> dict[str, object]:
    env = environ.get("FOLIO_ENVIRONMENT") or "dev"
    source = bicep / "params" / f"{env}.parameters.json"
    if not source.is_file():
        raise SystemExit(f"no parameter file {source} for FOLIO_ENVIRONMENT={env!r}")
    document = json.loads(source.read_text(encoding="utf-8"))
    parameters = document["parameters"]
    for name, variable in FROM_ENVIRONMENT.items():
        value = environ.get(variable, "").strip()
        if value:
            parameters[name] = {
                "value": [v.strip() for v in value.split(",")] if name == "additionalCorsOrigins" else value
            }
    return document


def main(argv: list[str]) -> int:
    bicep = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    document = build(bicep, dict(os.environ))
    target = bicep / "main.parameters.json"
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target} from params/{document['parameters']['environmentName']['value']}.parameters.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
