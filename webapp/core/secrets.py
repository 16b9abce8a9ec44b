"""Masking secrets in what the server shows: parameter values and console lines.

Parameters whose name looks like a credential are stored as given (the step needs them) but
read back as MASK by everyone except the task's own key. A MASK sent back unchanged (a form
round-trip) keeps the stored value. Console lines are redacted when they arrive, so a key
printed by a step is never stored: well-known token formats and the task's own secret
parameter values become LOG_MASK.
"""

import json
import re

MASK = "********"
LOG_MASK = "***"

# A name is split into words (snake, kebab, dotted and camelCase); it is sensitive when a word
# or a pair of words names a credential. Whole words, so ML names such as `max_tokens` or
# `tokenizer` stay visible while `hf_token`, `db_password` and `apiKey` are masked.
SENSITIVE_WORDS = frozenset(
    {
        "secret",
        "secrets",
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "token",
        "apikey",
        "credential",
        "credentials",
        "authorization",
    }
)
SENSITIVE_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("private", "key"),
        ("secret", "key"),
        ("auth", "token"),
        ("access", "token"),
        ("client", "secret"),
    }
)
_WORD_RE = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# Cheap pre-filter for console lines before the `name=value` scan.
_QUICK_RE = re.compile(r"secret|passw|passphrase|pwd|token|key|credential|authoriz", re.I)

# Formats that are credentials wherever they appear (after Airflow's list, PR #70956).
_TOKEN_PATTERNS = [
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{20,255}\b",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{20,255}\b",
    r"\bxox[abposr]-[A-Za-z0-9-]{8,}",  # Slack
    r"\bAIza[0-9A-Za-z_\-]{35}\b",  # Google API key
    r"\b[sr]k_live_[0-9A-Za-z]{16,}\b",  # Stripe
    r"\bpk_[0-9a-f]{12}_[A-Za-z0-9_\-]{20,}",  # this server's own API keys
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
]
TOKEN_RE = re.compile("|".join(f"(?:{p})" for p in _TOKEN_PATTERNS))
# `password=hunter2`, `"api_key": "abc"`, `SECRET_TOKEN: xyz` on a console line; the name is
# then checked with is_sensitive().
_ASSIGNMENT_RE = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>[^\s\"',;}]{3,})"
)
# Values shorter than this are not redacted inside free text: masking "1" or "ab" would
# shred every line while protecting nothing.
MIN_SECRET_LENGTH = 4


def is_sensitive(name) -> bool:
    words = [w.lower() for w in _WORD_RE.findall(str(name or ""))]
    if any(w in SENSITIVE_WORDS for w in words):
        return True
    return any(pair in SENSITIVE_PAIRS for pair in zip(words, words[1:], strict=False))


def _masked_entry(entry):
    if isinstance(entry, dict):
        if entry.get("value") in ("", None):
            return entry
        return {**entry, "value": MASK}
    return MASK


def mask_hyperparameters(hyperparameters) -> dict:
    """{section: {name: {value, ...}}} with sensitive values replaced by MASK (a copy)."""
    if not isinstance(hyperparameters, dict):
        return hyperparameters
    result = {}
    for section, params in hyperparameters.items():
        if not isinstance(params, dict):
            result[section] = params
            continue
        result[section] = {
            name: _masked_entry(entry) if is_sensitive(name) else entry
            for name, entry in params.items()
        }
    return result


def mask_flat(values) -> dict:
    """{name: value | {value, ...}} (configuration, overrides) with sensitive names masked."""
    if not isinstance(values, dict):
        return values
    return {
        name: _masked_entry(entry) if is_sensitive(str(name).rsplit("/", 1)[-1]) else entry
        for name, entry in values.items()
    }


def mask_configuration(values) -> dict:
    """Configuration {name: {value, ...}}: entries with a sensitive name masked whole, and in
    the text of the others the credentials it holds. A ClearML controller keeps its steps'
    parameters in one JSON entry ("Pipeline"), and a config file is text with
    `password: ...` lines, so a name alone does not find them."""
    if not isinstance(values, dict):
        return values
    return {
        name: _masked_entry(entry)
        if is_sensitive(str(name).rsplit("/", 1)[-1])
        else _masked_document_entry(entry)
        for name, entry in values.items()
    }


def mask_document(text: str) -> str:
    """A JSON document with the values under sensitive keys masked (re-encoded only when one
    was), or other text with its credentials redacted as a console line's are."""
    try:
        document = json.loads(text)
    except ValueError:
        return mask_text(text)
    if not isinstance(document, dict | list):
        return text
    masked = _masked_tree(document)
    if masked == document:
        return text
    return json.dumps(masked, indent=2 if "\n" in text else None)


def _masked_document_entry(entry):
    if isinstance(entry, dict) and isinstance(entry.get("value"), str):
        text = mask_document(entry["value"])
        return entry if text == entry["value"] else {**entry, "value": text}
    if isinstance(entry, str):
        return mask_document(entry)
    return entry


def _masked_tree(node):
    if isinstance(node, dict):
        return {
            key: MASK
            if is_sensitive(str(key).rsplit("/", 1)[-1])
            and not isinstance(value, dict | list)
            and value not in ("", None)
            else _masked_tree(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_masked_tree(item) for item in node]
    if isinstance(node, str):
        return mask_text(node)
    return node


def keep_masked_hyperparameters(incoming: dict, stored: dict) -> dict:
    """A MASK posted back for a sensitive parameter keeps the stored value."""
    result = {}
    for section, params in incoming.items():
        old_section = (stored or {}).get(section) or {}
        result[section] = {
            name: _kept(name, entry, old_section.get(name)) for name, entry in params.items()
        }
    return result


def keep_masked_flat(incoming: dict, stored: dict) -> dict:
    return {name: _kept(name, entry, (stored or {}).get(name)) for name, entry in incoming.items()}


def _kept(name, entry, old):
    if not isinstance(entry, dict) or not isinstance(old, dict):
        return entry
    value, stored = entry.get("value"), old.get("value", "")
    if is_sensitive(name) and value == MASK:
        return {**entry, "value": stored}
    if isinstance(value, str) and isinstance(stored, str) and value != stored:
        kept = _kept_document(value, stored)
        return entry if kept == value else {**entry, "value": kept}
    return entry


def _kept_document(value: str, stored: str) -> str:
    """A document read back masked inside (mask_configuration) and saved: unchanged, it keeps
    the stored text; a JSON one edited elsewhere keeps each stored value still masked."""
    if value == mask_document(stored):
        return stored
    try:
        incoming, old = json.loads(value), json.loads(stored)
    except ValueError:
        return value
    restored = _restored_tree(incoming, old)
    if restored == incoming:
        return value
    return json.dumps(restored, indent=2 if "\n" in value else None)


def _restored_tree(new, old):
    if isinstance(new, dict) and isinstance(old, dict):
        return {
            key: old[key]
            if value == MASK and key in old and is_sensitive(str(key).rsplit("/", 1)[-1])
            else _restored_tree(value, old.get(key))
            for key, value in new.items()
        }
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        return [_restored_tree(a, b) for a, b in zip(new, old, strict=True)]
    if isinstance(new, str) and isinstance(old, str) and new != old and new == mask_text(old):
        return old
    return new


def secret_values(task) -> list[str]:
    """The task's own sensitive parameter values, longest first (for console redaction)."""
    found = set()
    for params in (task.hyperparameters or {}).values():
        if isinstance(params, dict):
            for name, entry in params.items():
                value = entry.get("value") if isinstance(entry, dict) else entry
                if is_sensitive(name) and isinstance(value, str):
                    found.add(value)
    for name, entry in (task.configuration or {}).items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        if is_sensitive(name) and isinstance(value, str):
            found.add(value)
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def mask_text(text: str, known: list[str] | tuple = ()) -> str:
    """Redact known secret values, credential formats and `name=value` credentials."""
    if not text:
        return text
    for value in known:
        if value in text:
            text = text.replace(value, LOG_MASK)
    text = TOKEN_RE.sub(LOG_MASK, text)
    if not _QUICK_RE.search(text):
        return text
    return _ASSIGNMENT_RE.sub(_redact_assignment, text)


def _redact_assignment(match: re.Match) -> str:
    if match.group("value") == LOG_MASK or not is_sensitive(match.group("name")):
        return match.group(0)
    return f"{match.group('name')}{match.group('sep')}{LOG_MASK}"
