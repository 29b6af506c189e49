#!/usr/bin/env python3
"""Suggestion latency for one case against 2,000 registered experts.

Starts target/release/medesk (build it first: `cargo build --release`) on a
fresh SQLite file, or with `--backend postgres` a scratch database on
127.0.0.1:5432, registers the experts through the API, triages one case and
times GET /api/v1/cases/{id}/suggestions. Standard library only.

    cargo build --release && python3 benches/suggestions.py [--backend postgres] [--experts 2000]
"""
import argparse, json, os, random, socket, subprocess, sys, tempfile, time, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
parser.add_argument("--experts", type=int, default=2000)
parser.add_argument("--requests", type=int, default=100)
args = parser.parse_args()

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
base = f"http://127.0.0.1:{port}/api/v1"
workdir = tempfile.mkdtemp(prefix="medesk-suggest-")
database = f"sqlite://{workdir}/medesk.db"
pg_name = f"medesk_suggest_{os.getpid()}"
if args.backend == "postgres":
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {pg_name}"], check=True)
    database = f"postgres://postgres@127.0.0.1:5432/{pg_name}"
env = dict(os.environ, DATABASE_URL=database, MEDESK_BIND=f"127.0.0.1:{port}", RUST_LOG="warn",
           MEDESK_ADMIN_EMAIL="admin@bench.example", MEDESK_ADMIN_PASSWORD="admin password for the bench",
           MEDESK_MAIL_DIR=f"{workdir}/mail")
binary = os.path.join(os.path.dirname(__file__), "..", "target", "release", "medesk")
server = subprocess.Popen([binary, "serve"], env=env, cwd=workdir)

def call(method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")

try:
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health")
            break
        except OSError:
            time.sleep(0.1)
    admin = call("POST", "/auth/login", {"email": "admin@bench.example", "password": "admin password for the bench"})["access_token"]
    categories = ["regulatory", "marketing", "business_plan", "fundraising", "management_strategy",
                  "ip_strategy", "international", "reimbursement", "other"]
    product_types = ["drug", "medical_device", "regenerative", "other"]
    rng = random.Random(7)
    started = time.time()
    for i in range(args.experts):
        profile = {"email": f"e{i}@bench.example", "name": f"Expert {i}", "affiliation": "Bench",
                   "expertise": [{"category": c, "level": rng.randint(1, 3)} for c in rng.sample(categories, rng.randint(1, 4))],
                   "product_types": rng.sample(product_types, rng.randint(1, 3)),
                   "languages": rng.sample(["ja", "en"], rng.randint(1, 2)), "capacity": rng.randint(1, 5),
                   "conflicts": [f"Company {rng.randint(0, 500)} Inc."] if rng.random() < 0.3 else []}
        if rng.random() < 0.05:
            profile["paused_until"] = "2999-01-01"
        call("POST", "/experts", profile, admin)
    seeded = time.time() - started
    call("POST", "/auth/register", {"email": "founder@bench.example", "password": "founder password!", "name": "F",
                                    "organization": "Company 7 Inc."})
    applicant = call("POST", "/auth/login", {"email": "founder@bench.example", "password": "founder password!"})["access_token"]
    chosen = ["regulatory", "reimbursement", "ip_strategy"]
    case = call("POST", "/cases", {"title": "t", "description": "d", "product_type": "medical_device",
                                   "categories": chosen, "stage": "idea"}, applicant)
    call("POST", f"/cases/{case['id']}/claim", {}, admin)
    call("POST", f"/cases/{case['id']}/triage", {"priority": "normal", "product_type": "medical_device",
                                                 "categories": chosen, "route": "expert"}, admin)
    for _ in range(5):
        call("GET", f"/cases/{case['id']}/suggestions", None, admin)
    latencies = []
    for _ in range(args.requests):
        t = time.perf_counter()
        result = call("GET", f"/cases/{case['id']}/suggestions", None, admin)
        latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    n = len(latencies)
    print(json.dumps({"backend": args.backend, "experts": args.experts, "seed_seconds": round(seeded, 1),
                      "items": len(result["items"]), "excluded": len(result["excluded"]),
                      "p50_ms": round(latencies[n // 2], 2), "p95_ms": round(latencies[int(n * 0.95)], 2),
                      "max_ms": round(latencies[-1], 2), "target_ms": 20}))
finally:
    server.terminate()
    server.wait(timeout=30)
    if args.backend == "postgres":
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"])
