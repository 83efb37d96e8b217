"""The plugin contract: documented hooks, one test per hook, loading, layering and drift guards."""

import ast
import asyncio
import importlib.metadata
import inspect
import tomllib
from pathlib import Path

import aiohttp
import pytest

import avatar_daemon
import avatar_daemon_plugins as plugins
from avatar_daemon import PluginError, hookimpl, hookspecs
from avatar_daemon.testing import RecordingPlugin, make_daemon, make_settings, running, wait_until
from tests.conftest import FIXTURES, REPO, fixture_bytes

HOOKS = hookspecs.HOOK_NAMES


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_documents_every_argument(name):
    spec = getattr(hookspecs, name)
    doc = inspect.getdoc(spec)
    assert doc and len(doc) > 80
    for arg in inspect.signature(spec).parameters:
        assert f"``{arg}``" in doc or f"{arg}(" in doc or arg in doc, f"{name} does not document {arg}"


def test_every_hook_has_a_test():
    source = Path(__file__).read_text()
    missing = [h for h in HOOKS if f"def test_hook_{h}(" not in source and f"async def test_hook_{h}(" not in source]
    assert not missing


def test_hook_register_sources(tmp_path):
    daemon = make_daemon(tmp_path, settings=make_settings(tmp_path, plugins={"plugins_dir": str(FIXTURES / "loose_plugins")}))
    research, _ = daemon.pipeline.extract(b'[{"short_id": "a", "title": "Hi", "score": 3}]', "l.json", ".json")
    assert research.source == "lobsters"


def test_hook_register_script_writers(daemon):
    assert daemon.script_writer().name == "template"


def test_hook_register_renderers(daemon):
    assert {"local", "fake"} <= set(daemon.renderers.names())


def test_hook_register_formats(daemon):
    assert (daemon.formats["tiktok"].width, daemon.formats["tiktok"].height) == (1080, 1920)
    assert daemon.formats["youtube"].orientation == "landscape"


def test_hook_register_notifiers(daemon):
    assert {"log", "webhook", "recording"} <= set(daemon.notifiers.names())


class _Extras:
    __name__ = "extras"

    def __init__(self):
        self.started = False
        self.service_ran = asyncio.Event()
        self.service_closed = False

    @hookimpl
    def startup(self, daemon):
        async def go():
            self.started = daemon.store is not None
        return go()

    @hookimpl
    def register_routes(self, register):
        async def hello(request):
            from aiohttp import web
            return web.json_response({"hello": "plugin"})
        register("GET", "/plugins/extras/hello", hello)

    @hookimpl
    def register_services(self, register):
        extras = self

        class Svc:
            name = "extras-service"

            async def run(self, daemon):
                try:
                    extras.service_ran.set()
                    await asyncio.Event().wait()
                finally:
                    extras.service_closed = True
        register(Svc())


async def test_hook_startup(tmp_path):
    extras = _Extras()
    daemon = make_daemon(tmp_path, plugins=[extras], notifiers=["log"])
    async with daemon.started():
        assert extras.started


async def test_hook_register_routes(tmp_path):
    daemon = make_daemon(tmp_path, plugins=[_Extras()], notifiers=["log"])
    async with running(daemon):
        base = f"http://127.0.0.1:{daemon.http_port}"
        async with aiohttp.ClientSession() as client:
            async with client.get(base + "/plugins/extras/hello") as r:
                assert await r.json() == {"hello": "plugin"}
            async with client.get(base + "/healthz") as r:
                assert (await r.json())["ok"] is True


async def test_hook_register_services(tmp_path):
    extras = _Extras()
    daemon = make_daemon(tmp_path, plugins=[extras], notifiers=["log"])
    async with running(daemon):
        await asyncio.wait_for(extras.service_ran.wait(), 5)
    assert extras.service_closed  # cleaned up in its own finally


def test_broken_and_misspelt_plugins_are_reported_and_skipped(tmp_path):
    daemon = make_daemon(tmp_path, settings=make_settings(tmp_path, plugins={"plugins_dir": str(FIXTURES / "loose_plugins")}))
    info = {p.name: p for p in daemon.plugins}
    assert "ModuleNotFoundError" in info["broken"].error
    assert "register_sourcez" in info["misspelt"].error
    assert info["lobsters"].error is None and info["lobsters"].origin == "plugins_dir"
    assert "lobsters" in daemon.sources


def test_duplicate_names_name_both_plugins(tmp_path):
    class Dup:
        __name__ = "dup"

        @hookimpl
        def register_sources(self, register):
            class S:
                name = "reddit"
            register(S())

    with pytest.raises(PluginError, match=r"source 'reddit' is registered by both plugin '(reddit|dup)' and plugin '(dup|reddit)'"):
        make_daemon(tmp_path, plugins=[Dup()])


def test_every_builtin_is_declared():
    table = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["avatar_daemon"]
    on_disk = {p.stem if p.is_file() else p.name for p in (REPO / "plugins").iterdir()
               if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert set(table.values()) == {f"avatar_daemon_plugins.{n}" for n in on_disk}


def test_installed_metadata_is_current():
    table = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["avatar_daemon"]
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="avatar_daemon")
                 if ep.dist and ep.dist.name.replace("_", "-") == "avatar-daemon"}
    assert installed == table, "run `pip install -e .` to refresh the entry points"


def test_builtins_load_without_errors(daemon):
    assert [p for p in daemon.plugins if p.error] == []
    assert Path(plugins.__file__).parent == REPO / "plugins"


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, [a.name for a in node.names]


def test_core_never_imports_plugins():
    for path in (REPO / "avatar_daemon").rglob("*.py"):
        for module, _ in _imports(path):
            assert not module.startswith("plugins"), f"{path} imports {module}"


def test_plugins_import_only_the_public_contract():
    public = set(avatar_daemon.__all__)
    for path in (REPO / "plugins").rglob("*.py"):
        for module, names in _imports(path):
            if module.startswith("avatar_daemon_plugins"):
                continue  # a built-in plugin may share a helper with a sibling
            if module.startswith("avatar_daemon"):
                assert module == "avatar_daemon", f"{path} imports {module}"
                assert set(names) <= public, f"{path} imports {set(names) - public}"


def test_packaged_defaults_match_config():
    for name in ("avatars.yaml", "templates.yaml", "users.yaml"):
        assert (REPO / "config" / name).read_text() == (REPO / "avatar_daemon" / "defaults" / name).read_text()


class _Publisher:
    __name__ = "publisher"

    def __init__(self):
        self.posted: list[tuple[int, list[str]]] = []

    @hookimpl
    def publish(self, video, platforms):
        async def post():
            self.posted.append((video["id"], platforms))
        return post()


def _auto_post_campaign(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "social.yaml").write_text(
        "name: social\nsources: [{source: hackernews}]\nschedule: {every: daily}\n"
        "quality: {min_insights: 1, max_age_hours: 1000000}\nauto_post: [tiktok, youtube]\n")


async def test_hook_publish(tmp_path):
    publisher = _Publisher()
    daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(), publisher])
    _auto_post_campaign(tmp_path / "campaigns")
    async with running(daemon):
        await wait_until(lambda: daemon.campaigns.path_of("social"))
        await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
        (job_id,) = (await daemon.campaigns.run_now("social")).job_ids
        await wait_until(lambda: publisher.posted)
    assert publisher.posted == [(job_id, ["tiktok", "youtube"])]


async def test_auto_post_without_a_publisher_says_so_once(tmp_path):
    plugin = RecordingPlugin()
    daemon = make_daemon(tmp_path, plugins=[plugin])
    _auto_post_campaign(tmp_path / "campaigns")
    async with running(daemon):
        await wait_until(lambda: daemon.campaigns.path_of("social"))
        await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
        job_ids = (await daemon.campaigns.run_now("social")).job_ids
        await wait_until(lambda: all("completed" in plugin.notifier.states(j) for j in job_ids))
        await wait_until(lambda: any(n.kind == "publish.missing" for n in plugin.notifier.notices))
    (notice,) = [n for n in plugin.notifier.notices if n.kind == "publish.missing"]
    assert "no installed plugin implements the `publish` hook" in notice.message


def test_every_package_is_installed_under_its_own_name():
    """The wheel lists packages by hand (the plugins folder installs as avatar_daemon_plugins): none is left out."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for root in ("avatar_daemon", "plugins")
               for p in (REPO / root).rglob("__init__.py")}
    assert {n.replace("plugins", "avatar_daemon_plugins", 1) if n.startswith("plugins") else n
            for n in on_disk} == listed
    assert "plugins" not in listed


def _declared(protocol) -> dict[str, object]:
    """A Protocol's members: methods, and attributes it annotates."""
    members = {n: v for n, v in vars(protocol).items() if not n.startswith("_") and callable(v)}
    members.update({n: t for n, t in protocol.__annotations__.items() if not n.startswith("_")})
    return members


async def test_the_daemon_is_a_host(tmp_path):
    """Every member Host promises a plugin exists on a started daemon, methods with compatible parameters."""
    daemon = make_daemon(tmp_path, notifiers=["log"])
    async with daemon.started():
        checked = 0
        todo = [(hookspecs.Host, daemon, "daemon")]
        while todo:
            protocol, obj, where = todo.pop()
            for name, member in _declared(protocol).items():
                assert hasattr(obj, name), f"{where}.{name} is promised by {protocol.__name__} but missing"
                value = getattr(obj, name)
                checked += 1
                nested = getattr(hookspecs, member.strip("\"'"), None) if isinstance(member, str) else None
                if getattr(nested, "_is_protocol", False):
                    todo.append((nested, value, f"{where}.{name}"))
                elif inspect.isfunction(member):
                    promised = [p for p in inspect.signature(member).parameters if p != "self"]
                    actual = inspect.signature(value).parameters
                    assert set(promised) <= set(actual), f"{where}.{name} takes {list(actual)}, not {promised}"
                    assert inspect.iscoroutinefunction(member) == inspect.iscoroutinefunction(value), \
                        f"{where}.{name}: async in one and not the other"
    assert checked > 30
