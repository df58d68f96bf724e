"""Is terraform/ the deployment the code expects, no more and no less?

Two models of the same facts are built and compared:

* :func:`code_model`: what the code declares. Functions and their sizing, push
  subscriptions and the retry/dead-letter policy (``shared/topology.py``), topics
  (``shared/contracts.py``), the secrets a deployed function reads (the ``SecretStr``
  settings of ``shared/config.py``), the Cloud Scheduler jobs (``schedules/*.yaml`` via
  ``shared/schedules.py``), and for every function the upper bound of what its code can
  reach (its import graph: topics it can publish, secrets it can read).
* :func:`terraform_model`: what terraform declares, parsed with python-hcl2 (no terraform,
  no provider, no cloud): ``locals.tf``'s mirror of the topology, the schedule files that
  its ``fileset()`` selects, and the wiring of the modules that must carry the retry
  policy, the dead-letter policy and the OIDC tokens.

:func:`check` returns one line per mismatch (empty: consistent). Tests may edit either
model (drop a subscription, a schedule) and assert exactly that mismatch is reported.
"""

from __future__ import annotations

import ast
import copy
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deploy.imports import import_graph, parse_module
from deploy.requirements import REPO_ROOT

# SecretStr settings that no deployed function reads as a secret, and why.
NOT_DEPLOYED_SECRETS = {
    "database_url": "GCP connects with QS_CLOUDSQL_INSTANCE + QS_DB_USER/QS_DB_PASSWORD (the "
                    "Cloud SQL connector); DATABASE_URL is the local cloud's",
    "local_auth_secret": "the local harness's HS256 secret; deployed functions verify Google "
                         "ID tokens (QS_AUTH_MODE=google)",
}
# Secrets read by a library rather than by shared/config.py: env var -> (reader, functions).
LIBRARY_SECRETS = {
    "AWS_ACCESS_KEY_ID": ("boto3 (notify's SES email backend)", ("notify",)),
    "AWS_SECRET_ACCESS_KEY": ("boto3 (notify's SES email backend)", ("notify",)),
}
# Modules that name every contract class / every setting by defining them.
_DEFINING_MODULES = {"shared.config", "shared.contracts"}
# The probe is the local cloud's canary and its topic exists only there.
LOCAL_ONLY_TOPICS = {"local.probe"}


@dataclass
class FunctionModel:
    source: str
    entry_point: str
    memory_mb: int
    timeout_s: int
    max_instances: int
    min_instances: int
    publishes: frozenset[str] = frozenset()


@dataclass
class Model:
    """The deployment's shape, from either side. Mutable, so tests can break it."""

    functions: dict[str, FunctionModel]
    topics: set[str]
    dead_letter_topic: str
    dead_letter_subscription: str
    subscriptions: dict[str, tuple[str, str]]  # id -> (topic, function)
    retry: dict[str, int]  # minimum_backoff_s, maximum_backoff_s, max_delivery_attempts
    secrets: dict[str, frozenset[str]]  # env var -> functions bound
    schedules: dict[str, dict[str, Any]]  # job name -> its fields
    db_user: str = ""  # the functions' database role
    # code side only: what each function's code can possibly publish / read
    can_publish: dict[str, frozenset[str]] = field(default_factory=dict)
    can_read_secret: dict[str, frozenset[str]] = field(default_factory=dict)
    # terraform side only: wiring facts that must hold (name -> ok)
    wiring: dict[str, bool] = field(default_factory=dict)
    # the Schedule fields terraform passes on, and the defaults it fills in (try(...)); the
    # code side has every field of shared.schedules.Schedule and its defaults
    schedule_fields: frozenset[str] = frozenset()
    schedule_defaults: dict[str, Any] = field(default_factory=dict)


# --- the code's side ---------------------------------------------------------------------


def _secret_fields() -> dict[str, str]:
    """SecretStr settings -> the environment variable a deployment sets."""
    from pydantic import AliasChoices

    from shared.config import Settings

    out = {}
    for name, f in Settings.model_fields.items():
        if "SecretStr" not in repr(f.annotation):
            continue
        env = f"QS_{name.upper()}"
        alias = f.validation_alias
        if isinstance(alias, AliasChoices):
            env = str(alias.choices[0])
        elif isinstance(alias, str):
            env = alias
        out[name] = env
    return out


@functools.lru_cache(maxsize=4096)
def _names_in(path: str, mtime_ns: int) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.walk(parse_module(Path(path))):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Name):
            names.add(node.id)
    return frozenset(names)


def _operator_dlq_subscription() -> str:
    from local.cloud import OPERATOR_DLQ_SUBSCRIPTION

    return OPERATOR_DLQ_SUBSCRIPTION


def _settings_default(name: str) -> Any:
    from shared.config import Settings

    return Settings.model_fields[name].default


def _attribute_names(paths: Iterable[Path]) -> set[str]:
    """Every attribute and bare name the files use (settings.x, ChainSnapshotV1, ...)."""
    return set().union(*(_names_in(str(p), p.stat().st_mtime_ns) for p in paths))


def _module_path(root: Path, dotted: str) -> Path:
    base = root.joinpath(*dotted.split("."))
    return base / "__init__.py" if (base / "__init__.py").is_file() else base.with_suffix(".py")


def code_model(root: Path = REPO_ROOT, schedules_dir: Path | None = None) -> Model:
    from shared.contracts import CONTRACTS, TOPICS
    from shared.schedules import Schedule, load_schedules
    from shared.topology import DEAD_LETTER_TOPIC, DEFAULT_RETRY, FUNCTIONS, subscription_id

    secret_fields = _secret_fields()
    deployed_secrets = {f: env for f, env in secret_fields.items() if f not in NOT_DEPLOYED_SECRETS}
    topic_of_class = {cls.__name__: topic for topic, versions in CONTRACTS.items()
                      for cls in versions.values()}

    functions: dict[str, FunctionModel] = {}
    can_publish: dict[str, frozenset[str]] = {}
    can_read: dict[str, frozenset[str]] = {}
    for spec in FUNCTIONS:
        functions[spec.name] = FunctionModel(spec.source, spec.entry_point, spec.memory_mb,
                                             spec.timeout_s, spec.max_instances,
                                             spec.min_instances)
        graph = import_graph(root / spec.source / "main.py", root)
        # the modules that define every contract and setting name them all: what counts
        # is the code that uses them
        names = _attribute_names([root / spec.source / "main.py",
                                  *(_module_path(root, m) for m in graph.modules
                                    if m not in _DEFINING_MODULES)])
        can_publish[spec.name] = frozenset(
            {t for cls, t in topic_of_class.items() if cls in names} | {DEAD_LETTER_TOPIC})
        can_read[spec.name] = frozenset(env for f, env in deployed_secrets.items() if f in names)
        for env, (_, readers) in LIBRARY_SECRETS.items():
            if spec.name in readers:
                can_read[spec.name] |= {env}

    secrets: dict[str, frozenset[str]] = {env: frozenset() for env in deployed_secrets.values()}
    secrets.update({env: frozenset(fns) for env, (_, fns) in LIBRARY_SECRETS.items()})

    jobs = load_schedules(schedules_dir or root / "schedules")
    defaults = {n: f.get_default(call_default_factory=True) for n, f in Schedule.model_fields.items()
                if not f.is_required()}
    return Model(
        functions=functions,
        topics=set(TOPICS) - LOCAL_ONLY_TOPICS,
        dead_letter_topic=DEAD_LETTER_TOPIC,
        dead_letter_subscription=_operator_dlq_subscription(),
        subscriptions={subscription_id(t, s.name): (t, s.name) for s in FUNCTIONS for t in s.consumes},
        retry={"minimum_backoff_s": int(DEFAULT_RETRY.minimum_backoff.total_seconds()),
               "maximum_backoff_s": int(DEFAULT_RETRY.maximum_backoff.total_seconds()),
               "max_delivery_attempts": DEFAULT_RETRY.max_delivery_attempts},
        secrets=secrets,
        schedules={j.name: j.model_dump() for j in jobs},
        db_user=str(_settings_default("db_user")),
        can_publish=can_publish,
        can_read_secret=can_read,
        schedule_fields=frozenset(Schedule.model_fields),
        schedule_defaults=defaults,
    )


# --- terraform's side --------------------------------------------------------------------


def parse_hcl(path: Path) -> dict[str, Any]:
    """One .tf file as python-hcl2 reads it (strings unquoted, no block markers)."""
    stat = path.stat()
    return copy.deepcopy(_parse_hcl(str(path.resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=256)
def _parse_hcl(path: str, _mtime_ns: int, _size: int) -> dict[str, Any]:
    import hcl2
    from hcl2.utils import SerializationOptions

    options = SerializationOptions(with_comments=False, explicit_blocks=False,
                                   strip_string_quotes=True)
    with open(path) as f:
        return hcl2.load(f, serialization_options=options)


def _blocks(tf_dir: Path, kind: str) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(tf_dir.glob("*.tf")):
        for block in parse_hcl(path).get(kind, []):
            out.append((path, block))
    return out


def _locals(tf_dir: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for _, block in _blocks(tf_dir, "locals"):
        merged.update(block)
    return merged


def _resources(tf_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for _, block in _blocks(tf_dir, "resource"):
        for rtype, named in block.items():
            for name, body in named.items():
                out[(rtype, name)] = body
    return out


def _modules(tf_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for _, block in _blocks(tf_dir, "module"):
        out.update(block)
    return out


def _one(value: Any) -> Any:
    """hcl2 gives nested blocks as one-element lists."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


_FILESET = re.compile(r'fileset\(\s*(?P<dir>[\w.]+)\s*,\s*"(?P<pattern>[^"]+)"\s*\)')
_SCHEDULE_DIR = re.compile(r'^\$\{path\.module\}/(?P<rel>.+)$')
_TRY_DEFAULT = re.compile(r'try\(each\.value\.(\w+),\s*([^()]*?)\)')
_EACH_VALUE = re.compile(r'each\.value\.(\w+)')


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def _terraform_schedules(tf_dir: Path, loc: dict[str, Any]) -> tuple[dict[str, dict], list[str]]:
    """Evaluate locals.schedule_dir / fileset() as terraform would: which files, decoded."""
    problems: list[str] = []
    rel_dir = _SCHEDULE_DIR.match(str(loc.get("schedule_dir", "")))
    fileset = _FILESET.search(str(loc.get("schedule_files", "")))
    if rel_dir is None or fileset is None or fileset["dir"] != "local.schedule_dir":
        return {}, ["locals.schedule_dir/schedule_files must be "
                    '"${path.module}/<dir>" and fileset(local.schedule_dir, "<pattern>")']
    directory = (tf_dir / rel_dir["rel"]).resolve()
    docs: dict[str, dict] = {}
    for path in sorted(directory.glob(fileset["pattern"])):
        doc = yaml.safe_load(path.read_text())
        if not isinstance(doc, dict) or "name" not in doc:
            problems.append(f"terraform reads {path.name}, which has no job name")
            continue
        docs[doc["name"]] = doc
    return docs, problems


def terraform_model(tf_dir: Path) -> Model:
    loc = _locals(tf_dir)
    resources = _resources(tf_dir)
    modules = _modules(tf_dir)

    functions = {
        name: FunctionModel(f["source"], f["entry_point"], int(f["memory_mb"]), int(f["timeout_s"]),
                            int(f["max_instances"]), int(f["min_instances"]),
                            frozenset(f.get("publishes", [])))
        for name, f in loc.get("functions", {}).items()
    }
    secrets = {s["env"]: frozenset(s["functions"]) for s in loc.get("secrets", {}).values()}
    subscriptions = {sid: (s["topic"], s["function"]) for sid, s in loc.get("subscriptions", {}).items()}
    schedules, _ = _terraform_schedules(tf_dir, loc)

    # Wiring that must hold for the mirrored values to reach the resources.
    wiring: dict[str, bool] = {}
    topic_mod = modules.get("topic", {})
    wiring["module.topic iterates locals.topics"] = topic_mod.get("for_each") == "${toset(local.topics)}"
    wiring["module.topic gets locals.retry_policy"] = topic_mod.get("retry_policy") == "${local.retry_policy}"
    wiring["module.topic dead-letters to the dead-letter topic"] = (
        topic_mod.get("dead_letter_topic_id") == "${google_pubsub_topic.dead_letter.id}")
    dl = resources.get(("google_pubsub_topic", "dead_letter"), {})
    wiring["the dead-letter topic is named locals.dead_letter_topic"] = dl.get("name") == "${local.dead_letter_topic}"
    op = resources.get(("google_pubsub_subscription", "dead_letter_operator"), {})
    wiring["the operator subscription is named locals.dead_letter_subscription"] = (
        op.get("name") == "${local.dead_letter_subscription}")
    push = _resources(tf_dir / "modules" / "topic").get(("google_pubsub_subscription", "push"), {})
    retry = _one(push.get("retry_policy", {})) or {}
    dlp = _one(push.get("dead_letter_policy", {})) or {}
    pc = _one(push.get("push_config", {})) or {}
    wiring["push subscriptions set retry_policy from var.retry_policy"] = (
        retry.get("minimum_backoff") == "${var.retry_policy.minimum_backoff_s}s"
        and retry.get("maximum_backoff") == "${var.retry_policy.maximum_backoff_s}s")
    wiring["push subscriptions set dead_letter_policy from the variables"] = (
        dlp.get("dead_letter_topic") == "${var.dead_letter_topic_id}"
        and dlp.get("max_delivery_attempts") == "${var.retry_policy.max_delivery_attempts}")
    wiring["push subscriptions authenticate with an OIDC token"] = bool(_one(pc.get("oidc_token", {})))
    subs = str(loc.get("push_subscriptions", ""))
    wiring["push subscriptions ack within the function's timeout, clamped to 10-600 s (as local/)"] = (
        "ack_deadline_seconds = max(10, min(local.function_specs[s.function].timeout_s, 600))" in subs)
    wiring["push subscriptions carry the function's own audience and endpoint"] = (
        "audience = local.function_audiences[s.function]" in subs
        and "push_endpoint = module.function[s.function].uri" in subs)
    wiring["push subscriptions are grouped by their topic"] = "if s.topic == topic" in subs
    fn_mod = modules.get("function", {})
    wiring["module.function iterates the functions (with overrides)"] = (
        fn_mod.get("for_each") == "${local.function_specs}")
    for var in ("memory_mb", "timeout_s", "max_instances", "min_instances", "entry_point"):
        wiring[f"module.function gets {var} from the function's spec"] = (
            fn_mod.get(var) == f"${{each.value.{var}}}")
    sched = modules.get("schedule", {})
    wiring["module.schedule iterates locals.schedules"] = sched.get("for_each") == "${local.schedules}"
    wiring["locals.schedule_docs decodes every file of locals.schedule_files"] = (
        "local.schedule_files" in str(loc.get("schedule_docs")) and "yamldecode" in str(loc.get("schedule_docs")))
    wiring["locals.schedules is keyed by each file's job name"] = (
        "local.schedule_docs" in str(loc.get("schedules")) and "doc.name" in str(loc.get("schedules")))

    flat = " ".join(_strings(sched))
    used = set(_EACH_VALUE.findall(flat)) | ({"name"} if "each.key" in flat else set())
    defaults = {f: yaml.safe_load(d) for f, d in _TRY_DEFAULT.findall(flat)}

    return Model(
        functions=functions,
        topics=set(loc.get("topics", [])),
        dead_letter_topic=loc.get("dead_letter_topic", ""),
        dead_letter_subscription=loc.get("dead_letter_subscription", ""),
        subscriptions=subscriptions,
        retry={k: int(v) for k, v in loc.get("retry_policy", {}).items()},
        secrets=secrets,
        schedules=schedules,
        db_user=str(loc.get("app_role", "")),
        wiring=wiring,
        schedule_fields=frozenset(used),
        schedule_defaults=defaults,
    )


# --- the comparison ------------------------------------------------------------------------


def _diff(what: str, code: Iterable[str], tf: Iterable[str]) -> list[str]:
    code, tf = set(code), set(tf)
    return ([f"{what} {x} is in the code but not in terraform" for x in sorted(code - tf)]
            + [f"{what} {x} is in terraform but not in the code" for x in sorted(tf - code)])


def check(code: Model, tf: Model, tf_dir: Path | None = None) -> list[str]:
    """Every difference between the code's deployment and terraform's, one line each."""
    problems: list[str] = []
    problems += _diff("function", code.functions, tf.functions)
    for name in sorted(set(code.functions) & set(tf.functions)):
        c, t = code.functions[name], tf.functions[name]
        for attr in ("source", "entry_point", "memory_mb", "timeout_s", "max_instances", "min_instances"):
            if getattr(c, attr) != getattr(t, attr):
                problems.append(f"function {name}: {attr} is {getattr(c, attr)!r} in shared/topology.py "
                                f"but {getattr(t, attr)!r} in terraform")
        extra = sorted(t.publishes - code.can_publish.get(name, frozenset()))
        if extra:
            problems.append(f"function {name} may publish to {extra} in terraform, but its code "
                            "publishes no such contract")

    problems += _diff("topic", code.topics, tf.topics)
    publishers = {t for f in tf.functions.values() for t in f.publishes}
    for topic in sorted(code.topics & tf.topics - publishers):
        problems.append(f"topic {topic} has no publisher in terraform")
    if code.dead_letter_topic != tf.dead_letter_topic:
        problems.append(f"dead-letter topic is {code.dead_letter_topic!r} in the code but "
                        f"{tf.dead_letter_topic!r} in terraform")
    if code.dead_letter_subscription != tf.dead_letter_subscription:
        problems.append(f"dead-letter subscription is {code.dead_letter_subscription!r} in local/ "
                        f"but {tf.dead_letter_subscription!r} in terraform")

    if code.db_user != tf.db_user:
        problems.append(f"the functions' database role is {code.db_user!r} in shared/config.py but "
                        f"{tf.db_user!r} in terraform (locals.app_role)")

    problems += _diff("subscription", code.subscriptions, tf.subscriptions)
    for sid in sorted(set(code.subscriptions) & set(tf.subscriptions)):
        if code.subscriptions[sid] != tf.subscriptions[sid]:
            problems.append(f"subscription {sid}: (topic, function) is {code.subscriptions[sid]} in "
                            f"the code but {tf.subscriptions[sid]} in terraform")
    for key in sorted(set(code.retry) | set(tf.retry)):
        if code.retry.get(key) != tf.retry.get(key):
            problems.append(f"retry policy {key} is {code.retry.get(key)} in shared/topology.py but "
                            f"{tf.retry.get(key)} in terraform")

    problems += _diff("secret", code.secrets, tf.secrets)
    for env in sorted(set(code.secrets) & set(tf.secrets)):
        bound = tf.secrets[env]
        if not bound:
            problems.append(f"secret {env} is bound to no function in terraform")
        unknown = sorted(bound - set(code.functions))
        if unknown:
            problems.append(f"secret {env} is bound to unknown function(s) {unknown}")
        for fn in sorted(bound & set(code.functions)):
            if env not in code.can_read_secret.get(fn, frozenset()):
                problems.append(f"secret {env} is bound to {fn}, whose code never reads it "
                                "(least privilege)")

    problems += _diff("schedule", code.schedules, tf.schedules)
    for name in sorted(set(code.schedules) & set(tf.schedules)):
        filled = {**code.schedule_defaults, **tf.schedules[name]}
        for key, value in code.schedules[name].items():
            if filled.get(key) != value:
                problems.append(f"schedule {name}: {key} is {value!r} in schedules/ but "
                                f"{filled.get(key)!r} as terraform reads it")
        if tf.schedules[name].get("target") not in tf.functions:
            problems.append(f"schedule {name} targets {tf.schedules[name].get('target')!r}, "
                            "not a terraform function")
    for key in sorted(code.schedule_fields - tf.schedule_fields):
        problems.append(f"module.schedule ignores the schedule field {key!r}")
    for key, default in sorted(tf.schedule_defaults.items()):
        if key in code.schedule_defaults and code.schedule_defaults[key] != default:
            problems.append(f"module.schedule defaults {key} to {default!r}, "
                            f"shared/schedules.py to {code.schedule_defaults[key]!r}")
    problems += [f"terraform wiring: {what} does not hold" for what, ok in tf.wiring.items() if not ok]
    if tf_dir is not None:
        _, schedule_problems = _terraform_schedules(tf_dir, _locals(tf_dir))
        problems += schedule_problems
    return problems


def check_repository(root: Path = REPO_ROOT, tf_dir: Path | None = None) -> list[str]:
    tf_dir = tf_dir or root / "terraform"
    return check(code_model(root), terraform_model(tf_dir), tf_dir)
