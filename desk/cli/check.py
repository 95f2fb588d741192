"""`hearken check-config`: validate the config file and list every problem, with its file and line."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("check-config", help="validate the config file; print every problem with its line")
    p.set_defaults(func=cmd_check_config)


def cmd_check_config(args) -> int:
    from desk.config.environment import config_path_from_env
    from desk.config.schema import DEFAULT_CONFIG, ConfigError, load_config
    from desk.store.db import shown_url
    from desk.config.preflight import (alert_reach_problems, auth_problems, channel_problems, cleartext_secrets,
                                       database_problems, model_problems, source_lines)

    path = args.config or config_path_from_env() or DEFAULT_CONFIG
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s)")
        for p in exc.problems:
            print(f"  {p}")
        return 1
    lines, problems = source_lines(cfg)
    problems = (auth_problems(cfg) + problems + alert_reach_problems(cfg) + model_problems(cfg)
                + database_problems(cfg))
    warnings = [p for p in channel_problems(cfg) if p.message.startswith("warning:")]
    problems += [p for p in channel_problems(cfg) if p not in warnings]
    print(f"{path}: {len(problems)} problem(s)" if problems else f"{path}: OK")
    for p in problems + warnings + cleartext_secrets(cfg):  # warnings are printed but do not fail the check
        print(f"  {p}")
    print(f"  database: {shown_url(cfg.database_url())}")
    print(f"  dashboard: http://{cfg.dashboard.host}:{cfg.dashboard.port or 'any free port'}, sign-in "
          f"{cfg.dashboard.auth}, links in emails to {cfg.dashboard.public_url}")
    for line in lines:
        print(f"  {line}")
    return 1 if problems else 0
