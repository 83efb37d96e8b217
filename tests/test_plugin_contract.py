"""The plugin contract: documented hooks, one test per hook, loading, layering and drift guards."""

import ast
import gc
import asyncio
import importlib.metadata
import inspect
import subprocess
import sys
import tomllib
import typing
import weakref
from pathlib import Path

import aiohttp
import pytest

import avatar_daemon
import avatar_daemon_plugins as plugins
from avatar_daemon import hookimpl, hookspecs
from avatar_daemon.errors import PluginError
from avatar_daemon.settings import load_settings
from avatar_daemon.testing import RecordingPlugin, make_daemon, make_settings, running, wait_until
from avatar_daemon.planning import extract
from tests.conftest import FIXTURES, REPO, fixture_bytes

HOOKS = hookspecs.HOOK_NAMES


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_documents_every_argument(name):
    spec = getattr(hookspecs, name)
    doc = inspect.getdoc(spec)
    assert doc and len(doc) > 80
    lines = [line.strip() for line in doc.splitlines()]
    for arg in inspect.signature(spec).parameters:
        own = [line for line in lines if line.startswith(f"``{arg}``:")]
        assert len(own) == 1, f"{name} has no line of its own for {arg!r} (one starting ``{arg}``:)"
        assert len(own[0]) > len(f"``{arg}``:") + 10, f"{name} documents {arg!r} with too few words"


def test_every_hook_has_a_test():
    source = Path(__file__).read_text()
    missing = [h for h in HOOKS if f"def test_hook_{h}(" not in source and f"async def test_hook_{h}(" not in source]
    assert not missing


def test_hook_register_sources(tmp_path):
    daemon = make_daemon(tmp_path, settings=make_settings(tmp_path, plugins={"plugins_dir": str(FIXTURES / "loose_plugins")}))
    research, _ = extract(daemon.catalogue, b'[{"short_id": "a", "title": "Hi", "score": 3}]', "l.json", ".json")
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


def test_hook_register_notify_targets(tmp_path):
    class Teams:
        __name__ = "teams"

        @hookimpl
        def register_notify_targets(self, register):
            class Target:
                name, model = "teams", int
            register(Target())

    daemon = make_daemon(tmp_path, plugins=[Teams()])
    assert {"slack", "webhook", "teams"} <= set(daemon.catalogue.notify_targets.names())
    assert daemon.catalogue.notify_targets["teams"].model is int


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


def _auto_post_campaign(folder, platforms: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "social.yaml").write_text(
        "name: social\nsources: [{source: hackernews}]\nschedule: {every: daily}\n"
        f"quality: {{min_insights: 1, max_age_hours: 1000000}}\nauto_post: [{platforms}]\n")


async def test_hook_register_publishers(tmp_path, monkeypatch):
    """A registered publisher is what a campaign's auto_post and a request post through."""
    from tests.fake_platform import FakePlatform, LoopbackPublisher, PublishingPlugin

    monkeypatch.setenv("AVATAR_DAEMON_LOOP_MAIN_TOKEN", "t0k")
    async with FakePlatform(token="t0k").serve() as platform:
        settings = make_settings(tmp_path, publishing={"accounts": {"loop-main": {"platform": "loopvid"}},
                                                       "poll_seconds": 0.05})
        daemon = make_daemon(tmp_path, plugins=[RecordingPlugin(), PublishingPlugin(LoopbackPublisher(platform.url))],
                             settings=settings)
        assert "loopvid" in daemon.catalogue.publishers.names()  # beside the built-in ones
        assert next(p for p in daemon.plugins if p.name == "loopback_publishing").registers["publishers"] == ["loopvid"]
        _auto_post_campaign(tmp_path / "campaigns", "loopvid")
        async with running(daemon):
            assert daemon.publishing.platforms() == {"loopvid": ["loop-main"]}
            await wait_until(lambda: daemon.campaigns.path_of("social"))
            await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
            (job_id,) = (await daemon.campaigns.run_now("social")).job_ids

            async def posted():
                rows = await daemon.publishing.for_video(job_id)
                return rows and rows[0]["state"] == "published"
            await wait_until(posted)
        assert len(platform.videos) == 1


def test_hook_register_checks(tmp_path, capsys):
    """A plugin's check is a line of `avatar-daemon doctor`, beside the built-in plugins' lines."""
    from avatar_daemon import Finding, cli

    class LobstersKey:
        name = "lobsters"

        async def run(self, http):
            return [Finding.fail("lobsters key", "LOBSTERS_TOKEN is not set: ask the admin for one")]

    class Lobsters:
        @hookimpl
        def register_checks(self, register):
            register(LobstersKey())

    daemon = make_daemon(tmp_path, plugins=[Lobsters()])
    assert {"lobsters", "local", "heygen", "slack"} <= set(daemon.catalogue.checks.names())
    # the command itself, with the plugin dropped into the plugins folder
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "lobsters_check.py").write_text(
        "from avatar_daemon import Finding, hookimpl\n\n"
        "class LobstersKey:\n    name = 'lobsters'\n\n"
        "    async def run(self, http):\n"
        "        return [Finding.fail('lobsters key', 'LOBSTERS_TOKEN is not set: ask the admin for one')]\n\n"
        "@hookimpl\ndef register_checks(register):\n    register(LobstersKey())\n")
    make_settings(tmp_path, http={"port": 0}, plugins={"plugins_dir": str(tmp_path / "plugins")})
    with pytest.raises(SystemExit) as exit_:
        cli.main(["doctor", "--config", str(tmp_path / "daemon.yaml")])
    out = capsys.readouterr().out
    assert exit_.value.code == 1 and "fail  lobsters key     LOBSTERS_TOKEN is not set" in out, out
    assert "ok    voices" in out


async def test_auto_post_without_a_publisher_says_so_once(tmp_path):
    plugin = RecordingPlugin()
    daemon = make_daemon(tmp_path, plugins=[plugin])
    _auto_post_campaign(tmp_path / "campaigns", "vimeo, dailymotion")  # platforms no built-in plugin posts to
    async with running(daemon):
        await wait_until(lambda: daemon.campaigns.path_of("social"))
        await daemon.pipeline.ingest(fixture_bytes("hn_algolia.json"), "hn.json", ".json")
        job_ids = (await daemon.campaigns.run_now("social")).job_ids
        await wait_until(lambda: all("completed" in plugin.notifier.states(j) for j in job_ids))
        await wait_until(lambda: len([n for n in plugin.notifier.notices if n.kind == "publish.missing"]) == 2)
    missing = [n for n in plugin.notifier.notices if n.kind == "publish.missing"]
    assert [n.message.split(" but ")[0] for n in missing] == ["campaign social asks to post to vimeo,",
                                                              "campaign social asks to post to dailymotion,"]
    assert "no publisher for platform 'vimeo'" in missing[0].message


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


# ---- every member the core uses on a plugin object is on the contract page ----------------

KINDS = {
    "renderers": (hookspecs.Renderer, hookspecs.DrawsPreviews, hookspecs.DryRuns, hookspecs.SyncsCatalogue,
                  hookspecs.CountsApiCalls, hookspecs.HasOwnTimeout, hookspecs.WaitsRemotely, hookspecs.ChecksPhotos),
    "sources": (hookspecs.ResearchSource, hookspecs.FetchesLive),
    "script_writers": (hookspecs.ScriptWriter,),
    "notifiers": (hookspecs.Notifier, hookspecs.TakesNotices),
    "services": (hookspecs.Service,),
    "notify_targets": (hookspecs.NotifyTarget, hookspecs.KeepsOldNotifyKeys),
}
ANNOTATED = {p.__name__: kind for kind, protocols in KINDS.items() for p in protocols}


def _registry(node: ast.AST) -> str | None:
    """The kind of plugin objects a registry expression holds (`self.renderers`, `renderers`), if it is one."""
    if isinstance(node, ast.Attribute) and node.attr in KINDS:
        owner = node.value  # the daemon's registries or a service's own, not campaign.sources (its specs)
        if (isinstance(owner, ast.Name) and owner.id in ("self", "d", "daemon", "c", "catalogue")) or (
                isinstance(owner, ast.Attribute) and owner.attr in ("daemon", "catalogue")):
            return node.attr
    if isinstance(node, ast.Name) and node.id in KINDS:
        return node.id
    return None


class _PluginUses(ast.NodeVisitor):
    """Members the core reads on plugin objects, found by following registries into names, per function."""

    def __init__(self, path: Path):
        self.path = path
        self.uses: list[tuple[str, str, int]] = []  # (kind, member, line)
        self.probes: list[int] = []  # lines with hasattr/getattr on a plugin object
        self.bound: list[dict[str, str]] = [{}]

    def kind(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.bound[-1].get(node.id)
        if isinstance(node, ast.Subscript):
            return _registry(node.value)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get":
                return _registry(func.value)
            if isinstance(func, ast.Attribute) and func.attr == "script_writer":
                return "script_writers"
            if isinstance(func, ast.Name) and func.id == "next" and node.args:
                gen = node.args[0]
                if isinstance(gen, ast.GeneratorExp):
                    self.visit(gen)
                    return self.kind(gen.elt)
        return None

    def iterated(self, node: ast.AST) -> str | None:
        if isinstance(node, (ast.List, ast.Tuple)):
            kinds = {self.iterated(e.value) if isinstance(e, ast.Starred) else None for e in node.elts} - {None}
            return kinds.pop() if len(kinds) == 1 else None
        return _registry(node)

    def bind(self, target: ast.AST, kind: str | None) -> None:
        if kind and isinstance(target, ast.Name):
            self.bound[-1][target.id] = kind

    def visit_FunctionDef(self, node):
        scope = dict(self.bound[-1])
        for arg in node.args.args + node.args.kwonlyargs:
            annotation = ast.unparse(arg.annotation).strip("\"'") if arg.annotation else ""
            if annotation in ANNOTATED:
                scope[arg.arg] = ANNOTATED[annotation]
        self.bound.append(scope)
        self.generic_visit(node)
        self.bound.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_For(self, node):
        self.bind(node.target, self.iterated(node.iter))
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_comprehension(self, node):
        self.bind(node.target, self.iterated(node.iter))
        self.generic_visit(node)

    def _visit_comprehension_expr(self, node):
        for generator in node.generators:  # bind before the element is read
            self.visit(generator)
        for child in ([node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]):
            self.visit(child)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _visit_comprehension_expr

    def visit_Assign(self, node):
        self.visit(node.value)
        for target in node.targets:
            self.bind(target, self.kind(node.value))

    def visit_AnnAssign(self, node):
        if node.value is not None:
            self.visit(node.value)
            self.bind(node.target, self.kind(node.value))

    def visit_Attribute(self, node):
        kind = self.kind(node.value)
        if kind:
            self.uses.append((kind, node.attr, node.lineno))
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        if (isinstance(func, ast.Name) and func.id in ("hasattr", "getattr") and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)):
            kind = self.kind(node.args[0])
            if kind:
                self.uses.append((kind, node.args[1].value, node.lineno))
                self.probes.append(node.lineno)
        self.generic_visit(node)


def _core_plugin_uses() -> list[tuple[str, str, str]]:
    uses = []
    for path in sorted((REPO / "avatar_daemon").rglob("*.py")):
        if path.name == "hookspecs.py":
            continue
        finder = _PluginUses(path)
        finder.visit(ast.parse(path.read_text()))
        uses += [(kind, member, f"{path.relative_to(REPO)}:{line}") for kind, member, line in finder.uses]
    return uses


def test_every_member_the_core_uses_on_a_plugin_object_is_declared():
    uses = _core_plugin_uses()
    undeclared = [f"{where}: {kind[:-1]}.{member}" for kind, member, where in uses
                  if not any(member in _declared(p) for p in KINDS[kind])]
    assert not undeclared, "declare on the contract page (hookspecs.py) or stop using:\n" + "\n".join(undeclared)
    # The finder follows the registries: it sees the members the daemon is known to use.
    seen = {(kind, member) for kind, member, _ in uses}
    assert {("renderers", "render"), ("renderers", "preview"), ("renderers", "dry_run"),
            ("renderers", "sync_catalogue"), ("renderers", "api_calls"), ("renderers", "timeout_seconds"),
            ("renderers", "submit"), ("renderers", "check"), ("renderers", "check_photo"),
            ("sources", "detect"), ("sources", "extract"), ("sources", "fetch"),
            ("notifiers", "notify"), ("notifiers", "notice"), ("services", "run")} <= seen, sorted(seen)


def test_the_core_probes_plugin_objects_only_through_the_contract():
    """Optional members are asked for with isinstance(obj, TheProtocol), never hasattr or getattr."""
    probes = []
    for path in sorted((REPO / "avatar_daemon").rglob("*.py")):
        finder = _PluginUses(path)
        finder.visit(ast.parse(path.read_text()))
        probes += [f"{path.relative_to(REPO)}:{line}" for line in finder.probes]
    assert not probes


def test_the_contract_imports_no_http_library():
    """`import avatar_daemon` is what every plugin pays at load: aiohttp (half the old import time) waits."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import avatar_daemon"],
                          capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "avatar_daemon.hookspecs" in imported  # the report is what we think it is
    assert not {m for m in imported if m.split(".")[0] in ("aiohttp", "slack_bolt", "av", "numpy")}


def test_the_public_api_is_grouped_and_complete():
    """Every name in __all__ exists, once, and every Protocol on the contract page is public."""
    names = avatar_daemon.__all__
    assert len(names) == len(set(names))
    assert all(hasattr(avatar_daemon, n) for n in names)
    protocols = {n for n, v in vars(hookspecs).items()
                 if getattr(v, "_is_protocol", False) and v is not typing.Protocol and not n.startswith("Host")}
    assert protocols <= set(names) and "Host" in names


def _daemon_chain(node: ast.AST, aliases: dict[str, list[str]]) -> list[str] | None:
    """The members read after the daemon in `daemon.a.b` (`daemon` a hook's, a kept one, or an alias)."""
    chain: list[str] = []
    while isinstance(node, ast.Attribute) and node.attr != "daemon":
        chain.insert(0, node.attr)
        node = node.value
    if isinstance(node, ast.Attribute) or (isinstance(node, ast.Name) and node.id == "daemon"):
        return chain  # x.daemon or daemon
    if isinstance(node, ast.Name) and node.id in aliases:
        return aliases[node.id] + chain
    return None


def _host_chains(tree: ast.AST):
    """(chain, line) for every `daemon.a.b` a plugin reads, through aliases such as `d = bot.daemon`."""
    aliases: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            pairs = [(t, node.value) for t in node.targets]
            if isinstance(node.targets[0], ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(node.targets[0].elts, node.value.elts))
            for target, value in pairs:
                chain = _daemon_chain(value, aliases)
                if isinstance(target, ast.Name) and chain is not None:
                    aliases[target.id] = chain
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = _daemon_chain(node, aliases)
            if chain:
                yield chain, node.lineno


def test_builtin_plugins_use_only_what_host_declares():
    bad = set()
    for path in sorted((REPO / "plugins").rglob("*.py")):
        for chain, line in _host_chains(ast.parse(path.read_text())):
            protocol, members = hookspecs.Host, chain
            while members:
                declared = _declared(protocol)
                if members[0] not in declared:
                    bad.add(f"{path.relative_to(REPO)}:{line}: daemon.{'.'.join(chain)}")
                    break
                nested = declared[members[0]]
                nested = getattr(hookspecs, nested.strip("\"'"), None) if isinstance(nested, str) else None
                if not getattr(nested, "_is_protocol", False):
                    break  # a value or a method: what follows is its own business
                protocol, members = nested, members[1:]
    assert not bad, "not on Host (hookspecs.py):\n" + "\n".join(sorted(bad))


def test_bad_plugin_settings_name_the_file_line_and_field(tmp_path):
    """Every built-in plugin checks its settings with plugin_settings: daemon.yaml's path and line, then the field."""
    path = tmp_path / "daemon.yaml"
    path.write_text("data_dir: var\n"
                    "plugins:\n"
                    "  settings:\n"
                    "    heygen:\n"
                    "      max_concurrency: 0\n"
                    "    slack:\n"
                    "      mode: carrier-pigeon\n"
                    "    llm:\n"
                    "      temperature: 5\n")
    daemon = make_daemon(tmp_path, settings=load_settings(path, environ={}))
    errors = {p.name: p.error for p in daemon.plugins if p.error}
    assert f"{path}:5: plugins.settings.heygen.max_concurrency: Input should be greater than or equal to 1" \
        in errors["heygen"]
    assert f"{path}:7: plugins.settings.slack.mode: Input should be 'socket' or 'http'" in errors["slack"]
    assert f"{path}:9: plugins.settings.llm.temperature:" in errors["llm_writer"]
    assert "local" in daemon.renderers and "template" in daemon.script_writers  # the rest load


def test_per_daemon_shares_one_object_between_a_plugins_hooks_and_lets_it_go(tmp_path):
    from avatar_daemon_plugins.heygen import _renderer

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first, second = make_daemon(tmp_path / "a"), make_daemon(tmp_path / "b")
    assert first.renderers["heygen"] is _renderer(first) is not _renderer(second)
    gone = weakref.ref(first)
    del first
    gc.collect()
    assert gone() is None  # nothing outside the daemon keeps it (and its renderer) alive


def test_the_builtins_offer_the_optional_members_the_daemon_relies_on(daemon):
    """A renamed optional member is not an error anywhere: the daemon just does without. Here it fails."""
    local, heygen = daemon.renderers["local"], daemon.renderers["heygen"]
    assert isinstance(local, hookspecs.DrawsPreviews) and not isinstance(local, hookspecs.DryRuns)
    assert isinstance(local, hookspecs.ChecksPhotos) and not isinstance(heygen, hookspecs.ChecksPhotos)
    for protocol in (hookspecs.DryRuns, hookspecs.SyncsCatalogue, hookspecs.CountsApiCalls, hookspecs.HasOwnTimeout):
        assert isinstance(heygen, protocol), protocol.__name__
    live = {s.name for s in daemon.sources if isinstance(s, hookspecs.FetchesLive)}
    assert live == {"reddit", "hackernews", "github", "google_trends"}
    assert all(isinstance(s, hookspecs.ResearchSource) for s in daemon.sources)
    assert {n.name for n in daemon.notifiers if isinstance(n, hookspecs.TakesNotices)} >= {"log", "webhook"}
