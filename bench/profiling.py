"""Optional pyinstrument profiles of the hot paths, written as text reports when ``--profile FOLDER`` is given."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from pyinstrument import Profiler

# Sampling interval in seconds: short, because one resolve takes tens of microseconds.
INTERVAL_SECONDS = 0.0001


def write_profile(folder: Path | None, name: str, work: Callable[[], object]) -> None:
    """Run ``work`` under pyinstrument and write its call tree to ``folder/name.txt``. Does nothing without a folder."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    profiler = Profiler(interval=INTERVAL_SECONDS)
    profiler.start()
    try:
        work()
    finally:
        profiler.stop()
    path = folder / f"{name}.txt"
    path.write_text(profiler.output_text(unicode=False, color=False, show_all=False), encoding="utf-8")
    print(f"Wrote profile {path}", flush=True)


def profile_settings_page(folder: Path | None, app: Flask, email: str, password: str, slug: str, requests: int) -> None:
    """Profile the settings page and a save through Flask's test client, in this process, after a real login."""
    if folder is None:
        return
    client = app.test_client()
    token_pattern = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
    login_token = token_pattern.search(client.get("/login").text).group(1)
    client.post("/login", data={"email": email, "password": password, "csrf_token": login_token})
    page = client.get(f"/t/{slug}/settings")
    if page.status_code != 200:
        raise AssertionError(f"the settings page returned {page.status_code} after login")
    save_token = token_pattern.search(page.text).group(1)

    def show() -> None:
        for _ in range(requests):
            client.get(f"/t/{slug}/settings")

    def save() -> None:
        for number in range(requests):
            client.post(
                f"/t/{slug}/settings/stripe",
                data={"csrf_token": save_token, "stripe__secret_key": f"sk_test_profile{number}"},
            )

    write_profile(folder, "settings-page", show)
    write_profile(folder, "settings-save", save)
