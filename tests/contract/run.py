#!/usr/bin/env python3
"""Contract test: schemathesis against medesk's own OpenAPI document.

Starts the `medesk` binary on a fresh database and a free port, creates an
admin (MEDESK_ADMIN_EMAIL/PASSWORD) and registers an applicant over the API,
then runs `schemathesis run` against /api/openapi.json once per role with
every check and every phase (examples, coverage, fuzzing, stateful). Exits
non-zero when any run reports a failure or an error.

Usually started by tests/contract/run.sh, which makes the virtual
environment and builds the binary:

    tests/contract/run.sh                      # SQLite
    tests/contract/run.sh --backend postgres   # PostgreSQL on 127.0.0.1:5432
    tests/contract/run.sh --max-examples 50 --role applicant
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ADMIN_EMAIL = "contract-admin@medesk.example"
ADMIN_PASSWORD = "contract admin password"
APPLICANT_EMAIL = "contract-applicant@medesk.example"
APPLICANT_PASSWORD = "contract applicant password"
EXPERT_EMAIL = "contract-expert@medesk.example"
EXPERT_PASSWORD = "contract expert password"
ROLES = ("admin", "applicant")
CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemathesis.toml")

# Checks left out of `--checks all`, each with the reason.


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(base, method, path, body=None, token=None, csv=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data if csv is None else csv.encode(), method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if csv is not None:
        req.add_header("Content-Type", "text/csv")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, (json.loads(raw) if raw else None)


def login(base, email, password):
    status, body = request(base, "POST", "/api/v1/auth/login", {"email": email, "password": password})
    if status != 200:
        sys.exit(f"contract: login as {email} answered {status}: {body}")
    return body["access_token"]


class Server:
    """medesk on a fresh database; stopped (and the database dropped) on exit."""

    def __init__(self, binary, backend, workdir):
        self.backend = backend
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.pg_database = None
        if backend == "sqlite":
            database_url = f"sqlite://{os.path.join(workdir, 'medesk.db')}"
        else:
            base_url = os.environ.get("MEDESK_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
            self.pg_base_url = base_url
            self.pg_database = f"medesk_contract_{os.getpid()}_{self.port}"
            self.psql(f"CREATE DATABASE {self.pg_database}")
            database_url = f"{base_url}/{self.pg_database}"
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database_url,
                "MEDESK_BIND": f"127.0.0.1:{self.port}",
                "MEDESK_ADMIN_EMAIL": ADMIN_EMAIL,
                "MEDESK_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "MEDESK_MAIL_DIR": os.path.join(workdir, "mail"),
                "MEDESK_WORKERS": "2",
                "MEDESK_PASSWORD_HASH_CONCURRENCY": "1",
                # schemathesis sends many logins with made-up addresses.
                "MEDESK_LOGIN_PER_ACCOUNT_PER_MINUTE": "100000",
                "MEDESK_LOGIN_PER_ADDRESS_PER_MINUTE": "100000",
                "RUST_LOG": os.environ.get("RUST_LOG", "warn"),
            }
        )
        self.log_path = os.path.join(workdir, "server.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                self.stop()
                sys.exit(f"contract: medesk exited with {self.process.returncode}; see {self.log_path}")
            try:
                if request(self.base, "GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                sys.exit("contract: medesk did not answer /health within 60 s")
            time.sleep(0.2)

    def psql(self, statement):
        subprocess.run(
            ["psql", f"{self.pg_base_url}/postgres", "-qAtc", statement],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def server_errors(self):
        """Panics and internal errors the server logged (a 5xx answer says
        the same to schemathesis; a panic may only show here)."""
        with open(self.log_path, errors="replace") as f:
            return [line.rstrip() for line in f if "panicked" in line or "request failed" in line]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        if self.pg_database:
            self.psql(f"DROP DATABASE IF EXISTS {self.pg_database} WITH (FORCE)")
            self.pg_database = None


def expect(base, want, method, path, body=None, token=None, csv=None):
    status, answer = request(base, method, path, body, token, csv)
    if status != want:
        sys.exit(f"contract: seeding: {method} {path} answered {status}, not {want}: {answer}")
    return answer


def seed(base):
    """The accounts the runs act as, and data for their reads to return (a
    case through triage, assignment, messages, a meeting and a support
    plan; another just filed; imported history; an expert), so responses
    with content are checked against the document too. Returns
    {role: (email, password)}."""
    expect(
        base,
        201,
        "POST",
        "/api/v1/auth/register",
        {
            "email": APPLICANT_EMAIL,
            "password": APPLICANT_PASSWORD,
            "name": "Contract Applicant",
            "organization": "Contract Test Startup",
            "locale": "en",
        },
    )
    applicant = login(base, APPLICANT_EMAIL, APPLICANT_PASSWORD)
    admin = login(base, ADMIN_EMAIL, ADMIN_PASSWORD)
    intake = {
        "title": "医療機器の承認申請について",
        "description": "クラスII医療機器の承認申請に必要な試験を相談したいです。",
        "product_type": "medical_device",
        "categories": ["regulatory", "reimbursement"],
        "stage": "non_clinical",
        "organization": {"name": "Contract Test Startup", "kind": "startup"},
        "language": "ja",
    }
    case = expect(base, 201, "POST", "/api/v1/cases", intake, applicant)
    expect(base, 201, "POST", "/api/v1/cases", {**intake, "title": "Just filed"}, applicant)
    expert = expect(
        base,
        201,
        "POST",
        "/api/v1/experts",
        {
            "email": EXPERT_EMAIL,
            "password": EXPERT_PASSWORD,
            "name": "Contract Expert",
            "affiliation": "Tokyo Regulatory Partners",
            "expertise": [{"category": "regulatory", "level": 3}],
            "product_types": ["medical_device"],
            "languages": ["ja", "en"],
        },
        admin,
    )
    expect(
        base,
        201,
        "POST",
        "/api/v1/import/cases",
        token=admin,
        csv="received_on,product_type,categories,organization,title,status,outcome\n"
        "2019-04-01,drug,regulatory;ip_strategy,Old Pharma,Historic case,closed,resolved\n",
    )
    case_path = f"/api/v1/cases/{case['id']}"
    expect(base, 200, "POST", f"{case_path}/claim", {}, admin)
    triage = {"priority": "high", "product_type": "medical_device", "categories": ["regulatory"], "route": "expert"}
    expect(base, 200, "POST", f"{case_path}/triage", triage, admin)
    assignment = expect(
        base, 201, "POST", f"{case_path}/assignments", {"expert_id": expert["id"], "role": "lead"}, admin
    )
    expert_token = login(base, EXPERT_EMAIL, EXPERT_PASSWORD)
    expect(base, 200, "POST", f"/api/v1/assignments/{assignment['id']}/accept", {}, expert_token)
    expect(base, 201, "POST", f"{case_path}/messages", {"body": "Any news?"}, applicant)
    expect(base, 201, "POST", f"{case_path}/messages", {"body": "Desk note", "visibility": "internal"}, admin)
    meeting = {"expert_id": expert["id"], "starts_at": "2037-12-03T10:00:00+09:00", "duration_minutes": 60, "mode": "online"}
    expect(base, 201, "POST", f"{case_path}/meetings", meeting, admin)
    expect(base, 200, "PUT", f"{case_path}/support-plan", {"body": "1. Test plan\n2. Submission"}, admin)
    return {"admin": (ADMIN_EMAIL, ADMIN_PASSWORD), "applicant": (APPLICANT_EMAIL, APPLICANT_PASSWORD)}


def run_schemathesis(schemathesis, base, role, token, args, report_dir):
    command = [
        schemathesis,
        "--config-file",
        CONFIG,
        "run",
        f"{base}/api/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(args.max_examples),
        "--seed",
        str(args.seed),
        "--workers",
        str(args.workers),
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-junit-path",
        os.path.join(report_dir, f"{role}.xml"),
    ]
    if args.max_time:
        command += ["--max-time", str(args.max_time)]
    print(f"== schemathesis as {role}: {' '.join(c if 'Bearer' not in c else 'Authorization: Bearer …' for c in command)}", flush=True)
    started = time.monotonic()
    # schemathesis keeps a cache in its working directory: the report's.
    result = subprocess.run(command, cwd=report_dir)
    elapsed = time.monotonic() - started
    print(f"== schemathesis as {role}: exit {result.returncode} after {elapsed:.0f} s", flush=True)
    return result.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="target/debug/medesk")
    parser.add_argument("--schemathesis", default=shutil.which("schemathesis") or "schemathesis")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), action="append")
    parser.add_argument("--role", choices=ROLES, action="append")
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("MEDESK_CONTRACT_MAX_EXAMPLES", "50")))
    parser.add_argument("--max-time", type=int, default=int(os.environ.get("MEDESK_CONTRACT_MAX_TIME", "0")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("MEDESK_CONTRACT_SEED", "14")))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--report-dir", default="target/contract")
    args = parser.parse_args()
    # schemathesis runs in the report directory.
    if os.sep in args.schemathesis:
        args.schemathesis = os.path.abspath(args.schemathesis)
    backends = args.backend or ["sqlite"]
    roles = args.role or list(ROLES)
    os.makedirs(args.report_dir, exist_ok=True)

    results = []  # (what, passed)
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="medesk-contract-") as workdir:
            server = Server(args.binary, backend, workdir)
            try:
                accounts = seed(server.base)
                for role in roles:
                    # Tokens last 15 minutes: one fresh login per run.
                    token = login(server.base, *accounts[role])
                    report_dir = os.path.abspath(os.path.join(args.report_dir, backend))
                    os.makedirs(report_dir, exist_ok=True)
                    code = run_schemathesis(args.schemathesis, server.base, role, token, args, report_dir)
                    results.append((f"{backend}/{role}", code == 0))
                errors = server.server_errors()
                if errors:
                    print(f"== {backend}: the server logged {len(errors)} panic or internal error line(s):")
                    for line in errors[:20]:
                        print("   " + line)
                results.append((f"{backend}/server log", not errors))
            finally:
                server.stop()
    failed = [what for what, passed in results if not passed]
    if failed:
        print(f"contract: failed: {', '.join(failed)}")
    # The closing line CI reads: one result per run (backend × role) and per
    # server log.
    print(f"contract: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
