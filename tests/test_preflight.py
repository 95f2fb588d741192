"""`hearken check-config` on the traps the YAML alone passes: sign-in secrets for `auth: oidc`, a source
marked optional that would be skipped, credentials missing from the environment. Each names file, line, key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from desk.config.schema import DEFAULT_CONFIG
from tests.conftest import MINIMAL_CONFIG, free_port

ROOT = Path(__file__).resolve().parent.parent
SECRETS = """\
[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "k3Qv9-TzP1wXs7bLr0eYh5mNc2uAf8dGj4oWi6Rq"
client_id = "hearken"
client_secret = "hearken-secret"
server_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"
"""


def hearken(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run from tmp_path with HOME there too, so only the secrets.toml files a test writes exist."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCOURSE_", "REDDIT_", "X_"))}
    return subprocess.run(
        [sys.executable, "-m", "desk.cli", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**clean, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT), **(env or {})})


def oidc_config(tmp_path: Path, port: int = 8501) -> Path:
    cfg = tmp_path / "hearken.yaml"
    cfg.write_text(MINIMAL_CONFIG + f"dashboard:\n  port: {port}\n  auth: oidc\n")
    return cfg


def test_oidc_without_sign_in_secrets_is_a_problem_with_file_line_and_key(tmp_path):
    cfg = oidc_config(tmp_path)
    run = hearken(tmp_path, "check-config", "--config", str(cfg))
    assert run.returncode == 1, run.stdout
    line = MINIMAL_CONFIG.count("\n") + 3
    assert f"{cfg}:{line}: dashboard.auth: oidc sign-in needs an [auth] section" in run.stdout
    assert str(tmp_path / ".streamlit" / "secrets.toml") in run.stdout  # where it looked

    # `hearken dashboard` refuses to start with the same words instead of failing in the browser
    dash = hearken(tmp_path, "dashboard", "--config", str(cfg), "--port", "0")
    assert dash.returncode == 2
    assert "dashboard.auth: oidc sign-in needs an [auth] section" in dash.stderr


def test_incomplete_or_misdirected_sign_in_secrets_are_named(tmp_path):
    port = free_port()
    cfg = oidc_config(tmp_path, port)
    secrets = tmp_path / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text(SECRETS.format(port=port).replace('cookie_secret = "k3Qv9-TzP1wXs7bLr0eYh5mNc2uAf8dGj4oWi6Rq"\n', ""))
    run = hearken(tmp_path, "check-config", "--config", str(cfg))
    assert run.returncode == 1
    assert f"the [auth] section in {secrets} lacks cookie_secret" in run.stdout

    secrets.write_text(SECRETS.format(port=port))
    run = hearken(tmp_path, "check-config", "--config", str(cfg))
    assert run.returncode == 0, run.stdout
    assert f"{cfg}: OK" in run.stdout

    # served on another port than the redirect URI names: sign-in would come back to the wrong place
    other = hearken(tmp_path, "dashboard", "--config", str(cfg), "--port", str(free_port()))
    assert other.returncode == 2
    assert f"redirect_uri 'http://127.0.0.1:{port}/oauth2callback' in {secrets} is not on the dashboard's address" \
        in other.stderr


def test_the_example_config_passes_and_its_optional_discourse_key_is_optional(tmp_path):
    shipped = hearken(tmp_path, "check-config", "--config", str(DEFAULT_CONFIG))
    assert shipped.returncode == 0, shipped.stdout
    assert "source demo (demo): ready, every 15s; can post replies" in shipped.stdout

    text = DEFAULT_CONFIG.read_text()
    community = text.index("name: community")
    enabled = text.index("enabled: false", community)
    cfg = tmp_path / "with-forum.yaml"
    cfg.write_text(text[:enabled] + "enabled: true " + text[enabled + len("enabled: false"):])
    run = hearken(tmp_path, "check-config", "--config", str(cfg))
    assert run.returncode == 0, run.stdout
    line = text[:community].count("\n")  # the "- type: discourse" line above the name
    assert (f"{cfg}:{line}: source community (discourse): ready, every 300s; reads anonymously "
            "(DISCOURSE_API_KEY is not set); cannot post replies") in run.stdout

    posting = hearken(tmp_path, "check-config", "--config", str(cfg),
                      env={"DISCOURSE_API_KEY": "k", "DISCOURSE_API_USERNAME": "northwind_team"})
    assert "source community (discourse): ready, every 300s; can post replies" in posting.stdout


def test_an_enabled_source_that_would_be_skipped_is_a_problem(tmp_path):
    demo = "  - {type: demo, name: demo, interval_seconds: 1}\n"
    cfg = tmp_path / "hearken.yaml"
    cfg.write_text(MINIMAL_CONFIG.replace(demo, demo + "  - {type: reddit, name: r, subreddits: [northwind]}\n"))
    run = hearken(tmp_path, "check-config", "--config", str(cfg))
    assert run.returncode == 1
    line = MINIMAL_CONFIG[:MINIMAL_CONFIG.index(demo)].count("\n") + 2
    assert f"{cfg}:{line}: sources.1: source r (reddit) is enabled but will be skipped: " in run.stdout
    assert "REDDIT_CLIENT_ID" in run.stdout


def test_a_secret_is_named_only_where_it_would_cross_the_network_unencrypted(tmp_path):
    """Loopback servers, TLS and https are fine, and so is a key nobody set; a login in clear to another
    machine is a warning with its line (check-config prints it and still passes)."""
    from desk.config.schema import load_config
    from desk.config.preflight import cleartext_secrets

    env = {"SMTP_USER": "hearken", "SMTP_PASSWORD": "pw-1234", "DISCOURSE_KEY": "key-5678"}

    def warnings(sources: str = "", smtp: str = "") -> list[str]:
        path = tmp_path / "hearken.yaml"
        path.write_text(MINIMAL_CONFIG.replace("sources:\n", "sources:\n" + sources)
                        + (f"alerts:\n  smtp: {{{smtp}}}\n" if smtp else ""))
        return [str(p) for p in cleartext_secrets(load_config(path), env)]

    login = "username_env: SMTP_USER, password_env: SMTP_PASSWORD"
    assert warnings(smtp=f"host: 127.0.0.1, security: none, {login}") == []
    assert warnings(smtp=f"host: smtp.example.com, security: starttls, {login}") == []
    assert warnings(smtp="host: smtp.example.com, security: none") == []  # no login: nothing secret goes
    [smtp] = warnings(smtp=f"host: smtp.example.com, security: none, {login}")
    assert ":13: alerts.smtp.security: warning:" in smtp and "$SMTP_USER" in smtp and "starttls" in smtp

    dis = "  - {{type: discourse, name: community, base_url: '{url}', api_key_env: {key}}}\n"
    assert warnings(dis.format(url="https://community.example.com", key="DISCOURSE_KEY")) == []
    assert warnings(dis.format(url="http://127.0.0.1:8080", key="DISCOURSE_KEY")) == []
    assert warnings(dis.format(url="http://community.example.com", key="UNSET_KEY")) == []  # read anonymously
    [key] = warnings(dis.format(url="http://community.example.com", key="DISCOURSE_KEY"))
    assert ":7: sources.0.base_url: warning: source community would send $DISCOURSE_KEY to community.example.com" in key

    forum = "  - {type: forum, name: board, pages: ['http://ann:pw-9@board.example.com/t/1'], preset: phpbb}\n"
    [pw] = warnings(forum)
    assert "the password in the address" in pw and "board.example.com" in pw and "pw-9" not in pw


def test_a_cookie_secret_made_as_the_readme_says_passes_and_typed_ones_do_not():
    """The README's recipe (secrets.token_urlsafe(32)), and the hex and base64 forms people also use, must
    never be refused: 60 of them from a fixed seed. Words glued together and a keyboard run are refused
    by the estimator (zxcvbn), naming what it found."""
    import base64
    import random

    from desk.config.preflight import guessable_secret

    rng = random.Random(0)
    made = [base64.urlsafe_b64encode(rng.randbytes(32)).decode().rstrip("=") for _ in range(20)]
    made += [rng.randbytes(16).hex() for _ in range(20)] + [base64.b64encode(rng.randbytes(32)).decode() for _ in range(20)]
    assert [s for s in made if guessable_secret(s, ["Northwind"])] == []
    glued = guessable_secret("mysupersecretcookiesecretfornorthwind", ["Northwind"])
    assert glued and "words" in glued, glued
    keys = guessable_secret("qwertyuiopasdfghjklzxcvbnm1234567890")
    assert keys and "guesses" in keys, keys


STREAMLIT_SAYS = ("import json; from streamlit import config; "
                  "print(json.dumps([str(p) for p in config.get_option('secrets.files')]))")
WE_SAY = ("import json; from desk.config.preflight import secrets_files; "
          "print(json.dumps([str(p) for p in secrets_files()]))")


def test_the_secrets_files_are_the_ones_streamlit_reads_found_without_importing_it(tmp_path):
    """desk/ finds secrets.toml as Streamlit does (its defaults, then secrets.files in ~/.streamlit/config.toml
    and in the working directory's, the later winning) and never imports Streamlit to do it."""
    import json

    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".streamlit").mkdir(parents=True)
    (work / ".streamlit").mkdir(parents=True)

    def both() -> tuple[list[str], list[str]]:
        env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}
        said = [subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                               timeout=60, check=True).stdout for code in (STREAMLIT_SAYS, WE_SAY)]
        return json.loads(said[0]), json.loads(said[1])

    theirs, ours = both()
    assert ours == theirs == [str(home / ".streamlit" / "secrets.toml"), str(work / ".streamlit" / "secrets.toml")]
    (home / ".streamlit" / "config.toml").write_text(f'[secrets]\nfiles = ["{tmp_path}/a.toml", "{tmp_path}/b.toml"]\n')
    theirs, ours = both()
    assert ours == theirs == [f"{tmp_path}/a.toml", f"{tmp_path}/b.toml"]
    (work / ".streamlit" / "config.toml").write_text(f'[server]\nport = 9\n\n[secrets]\nfiles = ["{tmp_path}/c.toml"]\n')
    theirs, ours = both()
    assert ours == theirs == [f"{tmp_path}/c.toml"]

    loaded = subprocess.run([sys.executable, "-c", "import sys, desk.config.preflight, desk.cli.check; "
                             "print('streamlit' in sys.modules)"], cwd=work, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60, check=True)
    assert loaded.stdout.strip() == "False"
