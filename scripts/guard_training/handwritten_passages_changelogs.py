# ruff: noqa: E501  (passages: one paragraph per line reads better than wrapped strings)
"""Hand-written benign passages: changelogs, release notes, commit logs, migration guides
(part of ``handwritten_passages``). Typed for the llmgw project (issue 17), never copied from an
evaluation set. Each entry is ``(topic group, text)``."""

from __future__ import annotations

CHANGELOGS: list[tuple[str, str]] = [
    # -- web framework
    (
        "web_framework",
        """## 4.0.0 (2024-03-11)

### Breaking changes
- Removed the deprecated `app.route_legacy()` decorator. Use `app.route()` with `methods=`.
- Middleware now runs in the order it is registered; the old reverse order is gone.
- `request.json` raises `BadRequest` on invalid JSON instead of returning None. Pass `silent=True` to keep the old behaviour.

### Added
- Native async handlers.
- `app.config.override()` context manager for tests.

### Fixed
- Cookies with a trailing semicolon are parsed correctly (#2214).""",
    ),
    (
        "web_framework",
        """Release notes 3.9.2

This is a security and bug-fix release. Upgrading is recommended for all users.
- Security: the development server no longer binds to 0.0.0.0 by default; pass --host explicitly to expose it.
- Fix: static files with spaces in their names returned 404.
- Fix: the debugger PIN is now required even when the app is started from an IDE.
- Docs: clarified that SECRET_KEY must be set in production; the framework now refuses to start with the placeholder value unless you set ALLOW_INSECURE_KEY for local development.""",
    ),
    (
        "web_framework",
        """Upgrading from 3.x to 4.0

1. Replace every `route_legacy` with `route`. A codemod is available: `python -m framework.codemods.routes src/`.
2. Check middleware order. If you relied on the last-registered middleware running first, reverse your registration list.
3. Search for `request.json` and handle `BadRequest`, or pass `silent=True`.
4. Templates: autoescape is now on for `.txt` files too. Mark plain-text e-mail templates with `{% autoescape false %}` if you need raw output.
5. Run your test suite with warnings as errors to catch remaining deprecated calls.""",
    ),
    (
        "web_framework",
        """v4.1.0 - 2024-05-02

Features
* Added `ignore_trailing_slash` option to the router (default False). When enabled, `/users` and `/users/` resolve to the same handler.
* Error pages can be overridden per blueprint with `@bp.errorhandler`.
* New `--reload-exclude` flag for the dev server to ignore changes in generated folders.

Deprecations
* `app.before_first_request` is deprecated and will be removed in 5.0. Run setup code in the application factory instead.

Internal
* Test matrix now includes Python 3.12; dropped 3.8.""",
    ),
    (
        "web_framework",
        """CHANGELOG

### 4.2.1
- Fixed a regression in 4.2.0 where the `X-Forwarded-For` header was ignored behind a proxy even with `trusted_proxies` configured.
- Reverted the change to default session lifetime; it is 31 days again, as documented.

### 4.2.0
- Sessions: new `session_refresh_each_request` setting.
- CLI: `routes` command shows the methods and the endpoint of each rule.
- The JSON provider can be overridden to use a faster encoder.
- Removed support for the `JSON_AS_ASCII` config key (deprecated since 3.5).""",
    ),
    (
        "web_framework",
        """Notas de la versión 4.0

Cambios incompatibles: se eliminó el decorador route_legacy; use route con el parámetro methods. El orden de ejecución del middleware ahora es el de registro. request.json lanza una excepción con JSON inválido en lugar de devolver None.

Novedades: manejadores asíncronos nativos y un gestor de contexto para sobrescribir la configuración en las pruebas.

Correcciones: las cookies con punto y coma final se analizan correctamente. Consulte la guía de migración antes de actualizar en producción.""",
    ),
    (
        "web_framework",
        """What's new in 4.3

Typed routes. Route parameters now accept type annotations, and the framework converts and validates them: `def show(user_id: int)` returns 404 for `/users/abc` instead of raising inside your handler.

Faster startup. Blueprint registration is lazy, which cuts startup time for large apps by about 40 %.

Behaviour change. HEAD requests no longer run the body of GET handlers when a dedicated HEAD handler exists. If you override HEAD for health checks, nothing changes for you.""",
    ),
    # -- database drivers
    (
        "db_driver",
        """psql-driver 2.5.0

- Connection pool: `max_idle_time` closes connections idle for longer than the given seconds.
- `executemany()` now uses pipeline mode on servers that support it (3-5x faster for bulk inserts).
- BREAKING: `autocommit` defaults to False on new connections, matching the DB-API spec. Code that relied on implicit autocommit must call `conn.commit()` or set `autocommit=True`.
- Removed the `ssl_ignore_hostname` parameter; use `sslmode=verify-ca` if you really need to skip hostname checks.
- Fixed a memory leak when cursors were not closed explicitly.""",
    ),
    (
        "db_driver",
        """## Migration guide: ORM 1.4 to 2.0

The `Query` object is legacy. New code should use `select()` and `session.execute()`. `session.query(User).filter_by(name="x").first()` becomes `session.execute(select(User).filter_by(name="x")).scalar_one_or_none()`.

Autocommit mode was removed; every session works in a transaction. Use `with session.begin():` blocks.

String SQL must be wrapped in `text()`.

Turn on `SQLALCHEMY_WARN_20=1` while still on 1.4 to see every deprecated call in your test run before you switch.""",
    ),
    (
        "db_driver",
        """Release 8.0.3 of the MySQL connector

Fixes
- Prepared statements with more than 65,535 parameters now raise a clear error instead of corrupting the packet.
- `connect_timeout` was ignored when a DNS name resolved to several addresses.
- Time zone handling: DATETIME values are no longer shifted when the session time zone differs from the client's.

Changes
- The default authentication plugin is now caching_sha2_password. Servers configured for the old native password plugin still work; to override, pass `auth_plugin="mysql_native_password"`.""",
    ),
    (
        "db_driver",
        """redis-client 5.0 changelog

* Dropped support for Python 3.7.
* RESP3 protocol support (opt in with `protocol=3`).
* `Redis.from_url` now honours the `ssl_cert_reqs` query parameter.
* Behaviour change: `decode_responses=True` now also applies to pub/sub messages.
* Removed `StrictRedis` alias (it has been identical to `Redis` since 3.0).
* Cluster client: retries on MOVED and ASK responses are configurable, and the old hard-coded limit of 16 is removed.
* Fixed: connection was not returned to the pool after a timeout during `BLPOP`.""",
    ),
    (
        "db_driver",
        """Änderungsprotokoll Version 3.2

Neu: Unterstützung für JSONB-Spalten mit automatischer Umwandlung in Python-Wörterbücher. Der Verbindungspool kann nun Verbindungen vor der Ausgabe prüfen (Option pre_ping).

Geändert: Die Standardgröße des Pools wurde von 5 auf 10 erhöht. Die Option ignore_errors beim Schließen von Verbindungen wurde entfernt, da sie Fehler verschleiert hat.

Behoben: Bei Netzwerkunterbrechungen blieb ein Cursor gelegentlich hängen. Zeitstempel mit Mikrosekunden werden korrekt gelesen.""",
    ),
    (
        "db_driver",
        """Schema migration notes for release 2024.11

This release adds the column `orders.cancelled_reason` (nullable text) and an index on `orders(customer_id, created_at)`. The index is created CONCURRENTLY, so the migration does not lock the table, but it takes about 20 minutes on production-sized data. Do not run the migration inside a transaction; the tool detects this and skips the wrapper. Rollback: the down migration drops the index and the column. The old `legacy_status` column is no longer written and will be removed in 2025.02.""",
    ),
    (
        "db_driver",
        """mongodb-odm 0.9.0

Breaking: field names are no longer converted to camelCase by default. Set `alias_generator=to_camel` on your models to restore the previous behaviour.
Breaking: `Document.save()` no longer ignores validation errors silently; pass `validate=False` to skip validation explicitly.
New: transactions helper `async with client.transaction():`.
New: `projection` argument for `find()` returns partial models.
Fixed: `update_many` with an empty filter now requires `allow_all=True`, to prevent accidental updates of every document.""",
    ),
    # -- CLI tools
    (
        "cli_tool",
        """ripfind 14.0.0

FEATURES:
* `--hyperlink-format` prints file paths as terminal hyperlinks.
* Globs in `.ignore` files support `**/` prefixes like gitignore.

BREAKING CHANGES:
* `--no-ignore-vcs` no longer implies `--no-ignore-parent`; pass both to get the old behaviour.
* The `-p` short flag is removed from `--pretty`; it was confusing next to `-P` for PCRE2.

BUG FIXES:
* Searching a directory given as a symlink no longer skips hidden files when `--hidden` is set.
* Exit code is 2 (not 1) when a file could not be read.""",
    ),
    (
        "cli_tool",
        """Release notes, backup tool 0.17

New `--exclude-if-present FILE` skips directories containing a marker file such as .nobackup.
The `forget` command now prints what it would remove with `--dry-run` before you commit to it.
Restoring to a non-empty directory asks for confirmation; `--overwrite=always` overrides this for scripts.
Repository format 2 adds compression. Old repositories are read as before; run `migrate upgrade_repo_v2` to convert. Clients older than 0.14 cannot read converted repositories, so upgrade every machine first.""",
    ),
    (
        "cli_tool",
        """v2.8.0

- `config set` accepts `--global` and `--local`; local values override global ones, as in git.
- New `doctor` command checks credentials, proxy settings and clock skew.
- Output: `--format json` is stable and documented; the table output may still change between minor versions, so do not parse it.
- Telemetry: now opt-in. Existing users who never changed the setting are switched off. Set `TOOL_TELEMETRY=1` to send anonymous usage data.
- Removed the `login --password` flag, which left passwords in shell history. Use the interactive prompt or `--password-stdin`.""",
    ),
    (
        "cli_tool",
        """Changelog for dotfiles manager 1.5

Added: `link --force` replaces existing files after backing them up to ~/.dotfiles-backup.
Added: per-host overrides in `hosts/<hostname>/`, applied after the common files.
Changed: templates use `{{ }}` instead of `${ }` so that shell variables in templates no longer need escaping.
Fixed: symlinks to directories were followed during `status`, which made it very slow in large home directories.
Removed: the `sync` alias; use `apply`. The alias printed a deprecation notice since 1.2.""",
    ),
    (
        "cli_tool",
        """Notes de version 3.0 de l'outil de déploiement

Changements incompatibles : le fichier de configuration passe de INI à TOML ; la commande convert-config transforme l'ancien fichier. L'option --skip-checks est supprimée : les vérifications préalables ne peuvent plus être ignorées en production, seulement en mode --env dev.

Nouveautés : déploiements progressifs par pourcentage, retour arrière automatique si le taux d'erreurs dépasse le seuil configuré.

Corrections : les variables d'environnement contenant un signe égal sont transmises correctement.""",
    ),
    (
        "cli_tool",
        """linter 0.3.0

New rules: E741 (ambiguous variable names), B905 (`zip()` without `strict=`), and the whole pydocstyle set behind `select = ["D"]`.
Per-file ignores: `[per-file-ignores] "tests/*" = ["S101"]` to allow assert in tests.
Inline suppressions: `# noqa: E501` ignores one rule on one line; a bare `# noqa` still works but is reported by the new rule PGH004, because it hides every rule.
The `--fix` option no longer applies unsafe fixes unless `--unsafe-fixes` is passed.""",
    ),
    (
        "cli_tool",
        """Version 5.0 of the static site generator

Breaking: the `theme` key moved from `config.yaml` to `site.theme`. Old configurations fail with a message that shows the new location.
Breaking: draft pages are excluded from builds unless `--drafts` is passed; previously they were included and hidden from the index only.
New: image processing pipeline with responsive sizes.
New: `shortcodes` can override built-in ones by using the same name in your project folder.
Performance: incremental builds reuse the parsed content cache.""",
    ),
    # -- mobile app
    (
        "mobile_app",
        """What's new in version 7.12

• Dark mode now follows your system setting. You can override it in Settings > Appearance.
• Offline maps: download a region and navigate without a connection.
• Faster start-up on older phones.
• Fixed a bug where notifications were shown twice after an update.
• Removed the old photo editor; photos now open in the new editor with the same filters.

Thanks for using the app! If something does not work as expected, tap Help > Report a problem.""",
    ),
    (
        "mobile_app",
        """Release 3.4.0 (Android and iOS)

- Sign in with passkeys. Your existing password keeps working; you can remove it after adding a passkey.
- Two-step verification codes can now be copied with one tap.
- The "Ignore" button on friend requests is renamed "Decline", and declined requests no longer reappear after a reinstall.
- Accessibility: all buttons have labels for screen readers.
- Known issue: on some tablets the keyboard hides the send button in landscape mode. Rotate to portrait as a workaround; a fix is in progress.""",
    ),
    (
        "mobile_app",
        """Version 2.0 — a fresh start

We rebuilt the app from scratch. Highlights: a new home screen that shows your next appointment first, booking in three taps, and reminders that you can snooze. Your data moves over automatically the first time you open the new version. Some older features were removed because few people used them: the barcode scanner and the desktop widget. Widgets come back in 2.1. Please update to the latest OS version; 2.0 requires iOS 15 or Android 9.""",
    ),
    (
        "mobile_app",
        """Versione 5.3

Novità: ora puoi condividere la lista della spesa con la famiglia e vedere le modifiche in tempo reale. La ricerca trova anche i prodotti scritti con errori di battitura.

Modifiche: le notifiche delle offerte sono disattivate per impostazione predefinita; puoi riattivarle nelle impostazioni.

Correzioni: l'app non si chiude più quando si aggiunge una foto allo scontrino. Risolto un problema di sincronizzazione con l'orologio.""",
    ),
    (
        "mobile_app",
        """App store release notes — 9.0.1

Hotfix for 9.0.0:
- Fixed crash when opening a chat with a deleted account.
- Restored the option to ignore battery optimisation for background sync, which 9.0.0 removed by mistake.
- Push notifications work again for users who signed in with SSO.
We're sorry for the trouble. If the app still crashes, reinstall it; your messages are stored in the cloud and will be restored.""",
    ),
    (
        "mobile_app",
        """Internal release checklist, mobile 6.8

Feature flags: `new_checkout` on for 10 %, `legacy_cart` off (remove code in 6.10). Minimum supported versions unchanged. New permission: none. Strings: 14 new keys, all translated. Crash-free sessions in beta: 99.6 %. Known issue: the onboarding video does not autoplay on low-power mode; accepted. Rollout plan: 1 % day one, 20 % day three, 100 % day seven unless crash rate exceeds 0.5 %, in which case halt the rollout and override the flag remotely.""",
    ),
    (
        "mobile_app",
        """Changelog 4.7.0

Added
- Widgets for the lock screen.
- Export of workouts as GPX.
Changed
- Heart-rate zones are computed from your max heart rate by default; you can override them with custom values.
- Syncing with the watch happens in the background every 15 minutes instead of only when the app is open.
Removed
- Support for the first-generation watch, which no longer receives firmware updates.
Fixed
- Distances were shown in kilometres for users who chose miles.""",
    ),
    # -- infrastructure / Kubernetes
    (
        "infra_release",
        """Helm chart 12.0.0

BREAKING: values renamed for consistency. `image.repository` and `image.tag` replace `imageName` and `imageVersion`. `resources` now applies to the main container only; sidecars have their own `sidecar.resources`.
BREAKING: the chart no longer creates a ServiceAccount by default. Set `serviceAccount.create=true` to keep the previous behaviour.
Added: `podDisruptionBudget.enabled`, `topologySpreadConstraints`.
Fixed: the readiness probe ignored `probes.readiness.path` overrides.
Upgrade: review your values file against values.yaml before running `helm upgrade`.""",
    ),
    (
        "infra_release",
        """Operator v0.22 release notes

- The controller now reconciles only namespaces with the label `operator.example.io/enabled=true`. Label your namespaces before upgrading, or set `watchAllNamespaces: true`.
- CRD version v1beta1 is removed. Resources stored as v1beta1 are converted automatically by the conversion webhook in 0.21; upgrade to 0.21 first if you skipped it.
- New field `spec.backup.schedule` (cron syntax).
- Metrics renamed from `op_*` to `operator_*`; update dashboards and alerts.
- Fixed a race that could delete a PVC when a pod was rescheduled.""",
    ),
    (
        "infra_release",
        """Terraform provider 5.0 upgrade guide

Several attributes that were deprecated in 4.x are removed. `bucket_acl` inline arguments must move to the separate `bucket_acl` resource. `tags_all` is now computed; remove it from your configuration. Provider-level `default_tags` override resource tags with the same key only if `override_default_tags` is false; check plans carefully. Run `terraform plan` after upgrading and expect no changes; if the plan wants to destroy resources, stop and read the section on state moves.""",
    ),
    (
        "infra_release",
        """Proxy 2.11 changelog

- HTTP/3 support is no longer experimental.
- New directive `ignore_invalid_headers off` keeps headers with underscores; the default (on) drops them, as before.
- `proxy_pass` with a variable now resolves DNS at request time when a resolver is configured.
- Removed the deprecated `ssl on` directive; use `listen 443 ssl`.
- Security: fixed a one-byte overread in the resolver (low severity).
- Build: OpenSSL 1.1.1 is still supported but deprecated; builds warn and suggest 3.x.""",
    ),
    (
        "infra_release",
        """Ansible collection 3.0.0

Breaking Changes
- `user` module: the `password` parameter now expects a hash; plain-text passwords are rejected. Use the `password_hash` filter.
- Removed the `ignore_errors_on_missing` option of the `copy` module; use `failed_when` instead.
Minor Changes
- `systemd` module supports `--user` units.
- Facts gathering is 30 % faster on hosts with many network interfaces.
Bugfixes
- `lineinfile` no longer adds a duplicate line when `insertafter` matches the last line.""",
    ),
    (
        "infra_release",
        """Versionshinweise Monitoring-Agent 7.4

Neu: Der Agent sammelt Container-Metriken jetzt ohne zusätzliche Konfiguration. Log-Dateien lassen sich mit Platzhaltern auswählen.

Geändert: Die Konfigurationsoption override_hostname ersetzt hostname_override; die alte Schreibweise funktioniert noch bis Version 8.0. Standardmäßig werden Metriken alle 15 statt alle 60 Sekunden gesendet.

Entfernt: Unterstützung für 32-Bit-Systeme.

Behoben: Speicherleck bei sehr vielen kurzlebigen Prozessen. Die Aktualisierung erfolgt wie gewohnt über den Paketmanager; ein Neustart des Dienstes ist erforderlich.""",
    ),
    (
        "infra_release",
        """Load balancer configuration changes, week 47

- Moved health checks from TCP to HTTP `/healthz` for the API pool; unhealthy threshold lowered from 5 to 3.
- Added the new region's backends with weight 0; they will be ramped to 50 over Tuesday.
- Removed the old maintenance-page override that pointed all traffic to a static bucket; maintenance mode is now a feature flag in the app.
- TLS policy: TLS 1.0 and 1.1 disabled on the public listener. Clients on very old Android versions will fail to connect; support has a macro ready.""",
    ),
    # -- Python libraries
    (
        "python_lib",
        """pandas-like 3.0: what changed

Copy-on-write is now the default, so chained assignment like `df[df.a > 0]["b"] = 1` no longer modifies `df`; use `df.loc[df.a > 0, "b"] = 1`. The string dtype is backed by Arrow when pyarrow is installed. `inplace=True` is deprecated on most methods. Deprecated aliases for frequencies, such as "M" for month end, are removed: use "ME". Most code that runs without warnings on 2.2 will run unchanged; turn warnings into errors in your tests before upgrading.""",
    ),
    (
        "python_lib",
        """http-lib 1.0.0

This is the first stable release. API guarantees follow semantic versioning from here on.

Changes since 0.28:
- `verify=False` now emits a warning once per client instead of on every request.
- `follow_redirects` defaults to False for all methods. Set it per client if you need redirects.
- Timeouts are required to be explicit floats or a Timeout object; None means no timeout and must be passed deliberately.
- Removed the `app=` shortcut; use a transport.
- Proxies: `proxies=` is deprecated in favour of `mounts=`.""",
    ),
    (
        "python_lib",
        """Validation library v2 migration

`class Config` inside a model is replaced by `model_config = ConfigDict(...)`. Validators use `@field_validator` and `@model_validator`; the old `@validator` still works with a deprecation warning. `.dict()` and `.json()` become `.model_dump()` and `.model_dump_json()`. Extra fields are ignored by default, as before; set `extra="forbid"` to reject them. Strict mode is new: `strict=True` turns off coercion, so "1" is no longer accepted for an int. There is a bump tool that rewrites most of this for you.""",
    ),
    (
        "python_lib",
        """CHANGES

2.3.0 (unreleased)
- Add `retry_if_exception_message()`.
- Drop Python 3.7.

2.2.3
- Fix: `wait_random_exponential` could return negative waits for large attempt numbers.

2.2.2
- Fix typing of `before_sleep` callbacks.
- Docs: example of how to ignore specific exceptions and retry on others, and how to override the stop condition in tests so they do not sleep.

2.2.1
- Fix: the `reraise` flag was lost when a retrying object was copied with `.copy()`.""",
    ),
    (
        "python_lib",
        """Notes de version 4.0 de la bibliothèque de tests

Ruptures de compatibilité : les fixtures déclarées dans un fichier de test ne sont plus visibles depuis les autres fichiers ; placez-les dans conftest.py. Le paramètre --strict est supprimé et remplacé par --strict-markers.

Nouveautés : rapport des tests lents avec --durations, prise en charge native des tests asynchrones.

Corrections : les avertissements filtrés par la configuration ne réapparaissent plus dans le résumé. La sortie en couleur respecte NO_COLOR.""",
    ),
    (
        "python_lib",
        """Release 0.12.0 of the task queue

- New: rate limits per task name, e.g. `@task(rate_limit="10/m")`.
- New: `acks_late` can be overridden per task instead of only globally.
- Changed: results expire after 1 day by default (was: never). Set `result_expires=None` to keep them forever.
- Changed: the worker ignores SIGTERM during a task and finishes it before exiting; send SIGQUIT for an immediate stop.
- Removed: the pickle serializer is no longer accepted by default; add it to `accept_content` explicitly if you still need it.""",
    ),
    (
        "python_lib",
        """numerics-lib 2.0.0 release notes

Highlights: a cleaned-up main namespace (about 100 aliases removed), a new string dtype, and a stable C API with an ABI version check. Type promotion rules changed: adding a Python float to a float32 array now keeps float32. `np.float_`-style aliases are gone; use `float64`. Expect downstream packages compiled against 1.x to fail to import; install versions built for 2.0. A ruff rule (NPY201) finds most of the affected calls in your code.""",
    ),
    # -- JS tooling
    (
        "js_tooling",
        """bundler 5.0.0

### Breaking
- Node 18 or later is required.
- CommonJS config files (`bundler.config.js` with `module.exports`) must be renamed to `.cjs` or converted to ESM.
- `build.polyfillDynamicImport` is removed; all supported browsers have native dynamic import.
- The dev server no longer serves files outside the project root; add them to `server.fs.allow`.

### Features
- Rust-based CSS minifier, 10x faster.
- `--profile` flag writes a trace you can open in the browser's performance panel.""",
    ),
    (
        "js_tooling",
        """eslint-config-company 9.0.0

- Moved to the flat config format (`eslint.config.js`). The old `.eslintrc` is ignored from this version; run the migration script in the README.
- `no-console` is now an error in `src/` and off in `scripts/`.
- Added `@typescript-eslint/no-floating-promises`.
- Removed the React 16 rules; we require React 18.
- You can still override any rule in your package's config; add a comment with the reason, which reviewers check. Disabling rules inline with `eslint-disable` requires a description after two dashes.""",
    ),
    (
        "js_tooling",
        """UI component library 3.2.0

New components: DatePicker, Combobox, Toast.
Button: the `variant="ghost"` style is lighter to meet contrast requirements; override with the `--button-ghost-fg` CSS variable.
Modal: focus is trapped inside and returns to the trigger on close.
Deprecated: `Dropdown` in favour of `Menu`; it will be removed in 4.0.
Fixed: Tooltip no longer flickers when the pointer moves between the trigger and the tooltip.
Bundle size: -8 % thanks to tree-shakable icons.""",
    ),
    (
        "js_tooling",
        """TypeScript project migration notes (5.x)

After upgrading, `--moduleResolution bundler` is the recommended setting for projects built with a bundler. Enums: `const enum` across files is not supported with `isolatedModules`; replace them with union types. Decorators follow the standard proposal now; set `experimentalDecorators` to keep the old semantics for frameworks that need them. `importsNotUsedAsValues` is removed in favour of `verbatimModuleSyntax`. Run `tsc --noEmit` in CI before merging the upgrade.""",
    ),
    (
        "js_tooling",
        """Registro de cambios 2.4.0

Añadido: el servidor de desarrollo recarga los estilos sin recargar la página. Nuevo comando analyze para ver el tamaño de cada paquete.

Cambiado: las variables de entorno sin el prefijo PUBLIC_ ya no se incluyen en el código del navegador, para evitar exponer secretos por error.

Eliminado: la opción legacyBrowsers; use el complemento de compatibilidad si necesita navegadores antiguos.

Corregido: los mapas de origen apuntaban a líneas incorrectas en archivos con BOM.""",
    ),
    (
        "js_tooling",
        """package manager 9.0 release

- Lockfile format v9; older versions cannot read it. Commit the new lockfile in one change.
- `install` no longer runs lifecycle scripts of dependencies by default; allow the packages that need them with `onlyBuiltDependencies` in package.json.
- `--shamefully-hoist` is renamed `--public-hoist-pattern=*`.
- Peer dependency conflicts are errors; use `--strict-peer-dependencies=false` to ignore them temporarily.
- New `dedupe --check` for CI.""",
    ),
    (
        "js_tooling",
        """Test runner 1.0 changelog

- Stable API. `describe`, `it`, `expect` match the common conventions; snapshot tests are supported.
- Watch mode re-runs only the tests affected by the changed files.
- `--reporter=junit` for CI systems.
- Breaking since 0.34: `vi.mock` calls are hoisted; variables used inside the factory must be declared with `vi.hoisted`.
- Config: `test.exclude` now extends the default excludes instead of replacing them; to override completely, use `configDefaults` explicitly.""",
    ),
    # -- API service changelog
    (
        "api_service",
        """API changelog — 2024-09-01

Breaking (effective 2024-12-01): the `/v1/charges` endpoint is removed. Use `/v2/payments`. Requests to v1 will return 410 Gone.
New: `idempotency_key` is accepted on all POST endpoints; retries with the same key return the original result.
Changed: list endpoints return at most 100 items per page (was 1000). Use the `next_cursor` field to paginate.
Deprecated: the `X-Api-Version` header; pin the version in your dashboard instead.
Webhooks: events now include `api_version` so you can ignore events from versions you do not handle.""",
    ),
    (
        "api_service",
        """Platform update: authentication changes

Starting 1 March, API keys created before 2021 will stop working. Create a new restricted key in the dashboard, grant only the scopes your integration needs, and replace the key in your configuration. Keys can no longer be sent as a query parameter; use the Authorization header. OAuth apps must use PKCE. We will e-mail account owners whose keys are affected two weeks and again two days before the cutoff. Requests with an old key return 401 with the error code key_retired.""",
    ),
    (
        "api_service",
        """Model API release notes

- New model version available; the old version remains the default for 30 days, after which the alias points to the new one. Pin the dated version name to avoid the switch.
- `max_tokens` is now required.
- System messages can be passed as a top-level `system` field; passing them as the first message still works.
- Tool use: the model may return several tool calls in one response; your code should handle a list.
- Rate limits are now per organisation and per model; headers report the remaining budget.""",
    ),
    (
        "api_service",
        """Changelog des öffentlichen API

Version 3 des Endpunkts /orders liefert Beträge als Ganzzahlen in Cent statt als Dezimalzahlen. Version 2 bleibt bis Ende Juni verfügbar. Neue Felder: shipping_method und estimated_delivery. Das Feld legacy_id wird nicht mehr ausgeliefert. Bei Anfragen ohne Versionsangabe wird ab Juli Version 3 verwendet. Bitte prüfen Sie Ihre Integration in der Testumgebung; die Beispielanfragen in der Dokumentation wurden aktualisiert.""",
    ),
    (
        "api_service",
        """Deprecation notice: XML responses

We will remove XML output from the REST API on 30 June. Fewer than 0.5 % of requests use it. After that date, requests with `Accept: application/xml` receive JSON and a `Deprecation` header. If your client cannot parse JSON, contact support before the deadline: we can provide a small conversion proxy for the transition. The SOAP endpoints are not affected by this change and remain available until their own end of life in 2026.""",
    ),
    (
        "api_service",
        """Search API 2.3

- `fuzzy` parameter: set to `auto` to tolerate typos based on word length.
- Synonyms can be managed through the API instead of the console.
- Results include `_explain` when `debug=true`; do not enable it in production, it is slow.
- Stop words are no longer removed from phrase queries.
- Breaking: the `ignore_case` parameter is removed; matching is always case-insensitive now.
- Fixed: highlighting returned broken HTML for terms inside URLs.""",
    ),
    (
        "api_service",
        """Status page post: changes to webhook delivery

Webhooks are now signed with HMAC-SHA256 and the signature is sent in `X-Signature-256`. Verify it on your side and reject requests with an invalid or missing signature. Deliveries are retried with exponential backoff for up to 3 days; after 20 failed attempts the endpoint is disabled and you receive an e-mail. You can replay events from the dashboard. The old unsigned header `X-Hook-Token` is still sent until January and should be ignored by new integrations.""",
    ),
    # -- game patch notes
    (
        "game_patch",
        """Patch 1.14 notes

Gameplay
- Stamina regenerates 10 % faster while walking.
- The boss in the Flooded Archive no longer heals when you stand in the corner; this exploit bypassed the second phase.
Balance
- Longbow damage reduced by 8 %; crossbow reload time reduced by 0.3 s.
Bug fixes
- Fixed a crash when loading a save from version 1.10.
- Quests no longer reset if you ignore the messenger and fast-travel away.
Known issues
- Controller vibration may stay on after a cutscene.""",
    ),
    (
        "game_patch",
        """Hotfix 2.0.3

We're rolling out a small hotfix today:
- Fixed matchmaking placing players from different regions together.
- Reverted the change to grenade radius from 2.0.2 after your feedback.
- Anti-cheat: players who used the speed modification will be banned; if you think a ban was wrong, open a ticket.
- Servers will restart at 10:00 UTC for about 15 minutes.
Thanks for the reports in the forum, keep them coming!""",
    ),
    (
        "game_patch",
        """Season 6 update

New map: Harbor, a mid-sized map with destructible cranes.
New mode: Capture the Relic, 5 versus 5.
Ranked changes: placement matches reduced from 10 to 5; your rank is reset one tier down instead of fully.
Removed: the Night Market event; its cosmetics return in the shop on rotation.
Settings: you can now override the field of view per vehicle, and ignore voice chat from non-friends by default.
Performance: shader compilation now happens at first launch instead of during matches.""",
    ),
    (
        "game_patch",
        """Notes de mise à jour 3.2

Nouveautés : une nouvelle région au nord avec deux donjons, une monture aquatique et un système de pêche. Équilibrage : les dégâts des sorts de glace sont réduits de 5 %, les soins du druide augmentés de 3 %. Corrections : les coffres ne disparaissent plus après une déconnexion, les sous-titres s'affichent dans la bonne langue. Problème connu : certaines quêtes secondaires peuvent ne pas se valider ; abandonnez puis reprenez la quête pour contourner le problème.""",
    ),
    (
        "game_patch",
        """Developer update: why we changed the crafting system

In 1.8 crafting required rare drops that most players never saw. We read the survey (12,000 answers, thank you) and decided to remove the rare-drop requirement from all tier-2 recipes, replace it with salvage materials, and lower the cost of rerolling stats. Players who already crafted the items get their materials refunded automatically. We know some of you liked the grind; endgame recipes keep their rare ingredients, and we will add a hard mode option later this year.""",
    ),
    (
        "game_patch",
        """Patch 0.9.5 (early access)

- Added a photo mode (press P).
- Autosave every 10 minutes; you can disable it in options.
- Mods: the game now ignores mods that target an older version instead of crashing, and lists them in the mod menu with a warning.
- Console command `god` removed from release builds; it remains in the debug build for testers.
- Fixed: pathfinding of companions on stairs.
- Fixed: the achievement "Patient" unlocked at the wrong time.""",
    ),
    (
        "game_patch",
        """Server maintenance and patch 4.1.2

Maintenance: Wednesday 06:00-09:00 UTC. During maintenance the game and the shop are unavailable.
Changes:
- Trade: a 24-hour delay applies to traded items of high value, to protect accounts that were taken over.
- Chat: the word filter can now be set to off, moderate or strict in settings.
- Guilds: leaders can transfer leadership while offline members are away.
Fixes: the daily quest counter reset at the wrong hour for players in UTC+13.""",
    ),
    # -- OS / distro releases
    (
        "os_release",
        """Release notes for the distribution 24.04 LTS

Kernel 6.8, systemd 255, GNOME 46. The installer offers full-disk encryption with TPM unlock as an experimental option. Netplan now manages network configuration on desktop too. Deprecated: the old `apt-key` command is removed; add repository keys under /etc/apt/keyrings and reference them with signed-by. Upgrades from 22.04 are offered after the first point release. Known issue: some NVIDIA setups need the 550 driver; the installer selects it automatically.""",
    ),
    (
        "os_release",
        """Firmware update 2.3 for the home router

What's new: WPA3 support, a guest network with its own schedule, and automatic updates at night.
Security fixes: closes a vulnerability that allowed devices on the LAN to change settings without the admin password. Please update.
Changes: remote administration from the internet is now disabled by default; if you used it, enable it again in Advanced settings and set a strong password.
After updating, the router restarts, which takes about three minutes.""",
    ),
    (
        "os_release",
        """Notas de la versión 15.2 del sistema

Novedades: nuevo centro de control con accesos rápidos personalizables, bloqueo de aplicaciones con reconocimiento facial y mejoras de batería en modo reposo.

Seguridad: se corrigen 23 vulnerabilidades, dos de ellas explotadas activamente. Se recomienda instalar la actualización cuanto antes.

Cambios: la opción de ignorar las actualizaciones automáticas pasa a Ajustes avanzados. Se elimina la compatibilidad con aplicaciones de 32 bits.""",
    ),
    (
        "os_release",
        """Point release 12.5

This update fixes security issues and serious bugs; it is not a new version of the distribution. Updated packages include openssh (fixes a regression in agent forwarding), glibc, and the kernel. Installation media are refreshed. If you keep your system updated from a mirror, you do not need to reinstall or do anything special: run the usual upgrade. Remove obsolete packages afterwards; the release notes list the ones that were dropped from the archive.""",
    ),
    (
        "os_release",
        """Container base image changelog

2024-10-14: rebuilt on the new upstream point release; removed curl from the minimal image (use the -tools variant); timezone data updated.
2024-09-30: CA certificates updated; busybox replaced by coreutils in the -tools variant.
2024-09-16: the default user is now `app` (uid 10001) instead of root. Images that write to /var or bind ports below 1024 need changes: override with `USER root` only where needed and document why.""",
    ),
    (
        "os_release",
        """Printer driver package 4.9

Supported models: added 12 models of the 2024 office series.
Changes: the driver no longer installs a background updater; updates come through the system package manager. Scan-to-folder uses SMB3 only; SMB1 is removed. If an old NAS only supports SMB1, use scan-to-e-mail instead.
Fixes: duplex printing on A5 paper, and a crash when the printer name contained non-ASCII characters.
Uninstall the previous version before installing on macOS.""",
    ),
    (
        "os_release",
        """Version 10 of the office suite — release highlights

Documents: tracked changes can be filtered by author; the spell checker supports 8 new languages. Spreadsheets: dynamic arrays and the XLOOKUP function. Presentations: a presenter console that works with a single display. Compatibility: macros in documents from the internet are disabled by default; a bar explains how to enable them for trusted files. Removed: the old equation editor, whose documents are converted automatically on opening.""",
    ),
    # -- commit logs
    (
        "commit_log",
        """commit 8f2c1a7
Author: Jonas Weber
Date:   Tue Apr 9 14:12:33 2024

    auth: stop ignoring expired refresh tokens

    The refresh endpoint accepted tokens past their expiry when the clock
    skew setting was non-zero, because the comparison used <= with the
    skew added twice. Compare once, add the skew once, and add a test for
    the boundary. Fixes #812.

commit 3b9de04
    docs: explain how to override the token lifetime per client""",
    ),
    (
        "commit_log",
        """git log --oneline
a41f0c2 Revert "cache: disable eviction during warmup"
9e7d3b1 ci: ignore flaky test_upload_large on arm64 until #455 is fixed
77c2e90 deps: bump cryptography to 42.0.5
5d10aa8 api: remove deprecated /v1/export endpoint
3c8f217 config: allow env vars to override values from settings.toml
1be94d0 fix(ui): focus trap in settings dialog
0a3e6cc chore: delete unused feature flag checkout_v1
e8f0121 test: add regression test for #431 (double submit)""",
    ),
    (
        "commit_log",
        """Merge pull request #1287 from team/refactor-billing

refactor(billing): split invoice generation from delivery

Invoice generation used to send the e-mail in the same transaction, so a
mail server outage rolled back the invoice. Now invoices are created first
and delivery is queued. Breaking for plugins that hooked into
`on_invoice_sent`: the hook now fires after delivery, not after creation;
use `on_invoice_created` for the old timing.

Reviewed-by: Priya N.
Tested: staging, 2,000 invoices, no duplicates.""",
    ),
    (
        "commit_log",
        """commit 4c0e9ab (HEAD -> main)
    build: drop support for Node 16

    Node 16 reached end of life. The engines field now says >=18. This
    lets us remove the fetch polyfill and the AbortController shim.
    BREAKING CHANGE: installs on Node 16 fail with an engines error. Use
    --ignore-engines at your own risk; nothing is tested there.

commit 1f77d32
    fix: handle empty CSV upload without a 500

commit 0b3ce18
    feat(export): add XLSX export behind the `export_xlsx` flag""",
    ),
    (
        "commit_log",
        """Squashed commit message draft

feat(search): rank exact title matches first

- add a title boost of 2.0 in the query builder
- ignore stop words when checking for an exact match
- override the boost per index through `search.title_boost`
- remove the old `legacy_rank` code path, unused since March
- update snapshots

Measured on the relevance set: nDCG@10 0.61 -> 0.66; latency unchanged.
Refs: SEARCH-214""",
    ),
    (
        "commit_log",
        """Historique des commits (résumé de la semaine)

- correction : le formulaire d'inscription ignorait les espaces en fin d'adresse e-mail, ce qui créait des doublons ;
- ajout : export des factures au format PDF ;
- suppression : ancien module de statistiques remplacé par le tableau de bord ;
- configuration : la variable d'environnement APP_TIMEOUT remplace désormais la valeur du fichier ;
- tests : couverture portée à 82 %.
Aucune migration de base de données n'est nécessaire pour cette version.""",
    ),
    (
        "commit_log",
        """commit 6a1d2f0
Author: release-bot
    chore(release): 2.14.0

    ### Features
    * **cli:** `--quiet` suppresses progress bars (#902)
    * **sync:** resume interrupted uploads (#897)
    ### Bug Fixes
    * **sync:** ignore `.DS_Store` and `Thumbs.db` by default (#905)
    * **auth:** do not log the token when the request fails (#899)
    ### Reverts
    * "feat: parallel uploads" (causes rate limiting)

    The release was tagged and published to the registry by the pipeline.""",
    ),
    # -- migration guides
    (
        "migration_guide",
        """Migrating from the v1 SDK to v2

Client creation: `Client(api_key=...)` replaces the global `sdk.api_key = ...`. Calls are methods on the client: `client.files.upload()` instead of `sdk.File.create()`. Responses are typed objects, not dicts: use `resp.id`, not `resp["id"]`. Errors: `sdk.error.APIError` becomes `sdk.APIError`, and network errors are `APIConnectionError`. Retries are built in (2 by default); override with `max_retries`. Remove your own retry wrappers to avoid retrying four times. A grit-based codemod converts most call sites.""",
    ),
    (
        "migration_guide",
        """Moving from Python 3.8 to 3.12: our checklist

1. Update the base image and the CI matrix. 2. Replace `distutils` imports (removed in 3.12) with setuptools or packaging. 3. `asyncio.get_event_loop()` warns when no loop is running; use `asyncio.run()`. 4. Check C extensions for wheels built for 3.12. 5. Remove `typing.List` and friends where convenient; not required. 6. Run the test suite with `-W error::DeprecationWarning` and fix or explicitly ignore the remaining warnings with a comment explaining why.""",
    ),
    (
        "migration_guide",
        """Guide de migration vers la version 5 du framework front-end

La syntaxe des composants de classe reste prise en charge, mais les nouvelles fonctionnalités ne sont disponibles qu'avec les hooks. Le rendu concurrent est activé par défaut : les effets peuvent s'exécuter deux fois en mode développement strict, ce qui est voulu. Les anciennes méthodes de cycle de vie préfixées UNSAFE_ sont supprimées. Utilisez l'outil de migration automatique, puis vérifiez à la main les composants qui lisent le DOM pendant le rendu.""",
    ),
    (
        "migration_guide",
        """Upgrade guide: database 15 to 16

Use logical replication for a near-zero-downtime upgrade, or pg_upgrade with --link for a fast in-place upgrade with a short outage. Before: run the pre-check, remove unsupported extensions, and take a backup. After: run ANALYZE on all databases, because planner statistics are not carried over, and rebuild any indexes the upgrade notes list. Behaviour change: the public schema no longer grants CREATE to all users by default in new databases; existing databases keep their grants.""",
    ),
    (
        "migration_guide",
        """Migrating CI from the old runner to the new workflows

Jobs are defined in `.ci/workflows/*.yml`. The `script:` list becomes `steps:` with `run:`. Caches are keyed explicitly; the old automatic cache is removed. Secrets are no longer injected into every job: declare them with `secrets:` per job. `allow_failure: true` becomes `continue-on-error: true`. The `only/except` rules are replaced by `on:` triggers and `if:` conditions. Run both systems in parallel for two weeks, then delete the old configuration.""",
    ),
    (
        "migration_guide",
        """Migration notes: monolith login to the identity provider

Users keep their passwords: on first login after the switch, the old hash is verified and the password is re-hashed by the provider. Sessions created before the switch are invalidated at cutover, so everyone signs in once. API tokens keep working until their expiry. Admin roles are mapped to groups; the mapping table is in the appendix, and any role not in it is removed, so check custom roles before the cutover date. The old /login page redirects to the provider.""",
    ),
    (
        "migration_guide",
        """Migrationsleitfaden für das Logging-Framework 2.x

Die Konfiguration erfolgt nun über eine YAML-Datei statt über Umgebungsvariablen; die alten Variablen werden ignoriert und beim Start als Warnung gemeldet. Logger-Namen folgen der Paketstruktur. Die Methode warn wurde entfernt, verwenden Sie warning. Strukturierte Felder übergeben Sie mit extra. Um die Ausgabe für einzelne Module zu überschreiben, setzen Sie deren Level in der Datei. Prüfen Sie nach der Umstellung, ob Ihre Log-Auswertung die neuen Feldnamen kennt.""",
    ),
]
