"""`init`, `doctor` and `adapters check` report a login only where the run will really use it
(issue 29): `login_of` over each adapter's `logins_used` and its options, with the user's files
in a HOME of the test's own. Names and paths only, never a value."""

from __future__ import annotations

from pathlib import Path

from adapters.codex import CodexAdapter
from adapters.gemini import GeminiAdapter
from adapters.qwen import QwenAdapter
from orchestrator.config.adapter_entry import AdapterConfig
from orchestrator.run.setup.cli_detect import login_of

SECRET = "sk-never-printed-0123456789abcdef"


def _file(home: Path, relative: str, text: str) -> None:
    path = home / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _env(home: Path, **keys: str) -> dict[str, str]:
    return {"HOME": str(home), **keys}


def test_codex_without_base_url_uses_its_login(tmp_path: Path) -> None:
    _file(tmp_path, ".codex/auth.json", f'{{"OPENAI_API_KEY": "{SECRET}"}}')
    login = login_of(CodexAdapter(), None, _env(tmp_path))
    assert login.found
    assert login.where == "`codex login` (ChatGPT account or key): ~/.codex/auth.json"


def test_codex_with_base_url_and_its_key_uses_the_key_not_the_login(tmp_path: Path) -> None:
    _file(tmp_path, ".codex/auth.json", f'{{"OPENAI_API_KEY": "{SECRET}"}}')
    codex = CodexAdapter({"base_url": "http://127.0.0.1:9/v1", "env_key": "MY_KEY"})
    login = login_of(codex, None, _env(tmp_path, MY_KEY=SECRET))
    assert login.where == "MY_KEY set" and login.files == [] and login.keys_set == ["MY_KEY"]
    # The key given by the run config's env is the run's key too.
    settings = AdapterConfig(env={"MY_KEY": "${SOMEWHERE}"})
    login = login_of(codex, settings, _env(tmp_path))
    assert login.where == "MY_KEY given by the run config" and login.files == []


def test_codex_with_base_url_and_no_key_uses_the_login_with_requires_openai_auth(
    tmp_path: Path,
) -> None:
    _file(tmp_path, ".codex/auth.json", f'{{"OPENAI_API_KEY": "{SECRET}"}}')
    codex = CodexAdapter({"base_url": "http://127.0.0.1:9/v1"})
    login = login_of(codex, None, _env(tmp_path))
    assert login.found and login.files == [str(tmp_path / ".codex/auth.json")]
    assert login.where == (
        "`codex login` (ChatGPT account or key) (requires_openai_auth): ~/.codex/auth.json"
    )
    isolated = login_of(codex, AdapterConfig(credentials="isolated"), _env(tmp_path))
    assert not isolated.found and ".codex" not in isolated.where and "isolated" in isolated.where


def test_qwens_discontinued_oauth_login_is_not_a_login(tmp_path: Path) -> None:
    _file(tmp_path, ".qwen/oauth_creds.json", f'{{"access_token": "{SECRET}"}}')
    login = login_of(QwenAdapter(), None, _env(tmp_path))
    assert not login.found and login.needed and login.where.startswith("no login found")


def test_a_qwen_key_in_its_env_file_is_a_login(tmp_path: Path) -> None:
    _file(tmp_path, ".qwen/.env", f"# qwen\nexport OPENAI_API_KEY='{SECRET}'\n")
    login = login_of(QwenAdapter(), None, _env(tmp_path))
    assert login.found and login.where == "keys in ~/.qwen/.env: ~/.qwen/.env"
    moved = tmp_path / "qwen-home"
    _file(moved, ".env", f"DASHSCOPE_API_KEY={SECRET}\n")
    login = login_of(QwenAdapter(), None, _env(tmp_path, QWEN_HOME=str(moved)))
    assert login.files == [str(moved / ".env")]


def test_a_dotenv_file_is_a_login_only_where_it_sets_the_clis_key(tmp_path: Path) -> None:
    # Another tool's key in ~/.env, or an empty GEMINI_API_KEY, is no login of gemini.
    _file(tmp_path, ".env", f"ANTHROPIC_API_KEY={SECRET}\nGEMINI_API_KEY=\n#GEMINI_API_KEY=x\n")
    assert not login_of(GeminiAdapter(), None, _env(tmp_path)).found
    _file(tmp_path, ".gemini/.env", f'GEMINI_API_KEY="{SECRET}"\n')
    login = login_of(GeminiAdapter(), None, _env(tmp_path))
    assert login.found and login.where == "keys in ~/.gemini/.env: ~/.gemini/.env"
    assert SECRET not in login.where


def test_gemini_follows_gemini_cli_home_for_its_env_files(tmp_path: Path) -> None:
    moved = tmp_path / "gemini-home"
    _file(moved, ".env", f"GOOGLE_API_KEY={SECRET}\n")
    login = login_of(GeminiAdapter(), None, _env(tmp_path / "home", GEMINI_CLI_HOME=str(moved)))
    assert login.files == [str(moved / ".env")]


def test_a_cli_that_needs_no_login_is_not_said_to_lack_one() -> None:
    # Before: `adapters check scripted` said "no login found" for the offline persona.
    from adapters.scripted import Scripted
    from orchestrator.run.setup.cli_detect import login_of

    login = login_of(Scripted(), env={"HOME": "/nowhere"})
    assert login.where == "no login needed" and not login.needed
