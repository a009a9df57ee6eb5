# ruff: noqa: E501  (passages: one paragraph per line reads better than wrapped strings)
"""Hand-written benign passages for the TRAINING split of the passage unit (part of
``handwritten_passages``): the same four kinds, on topic groups of their own (none shared with the
calibration or test groups). Typed for the llmgw project (issue 17), never copied from an evaluation set."""

from __future__ import annotations

TRAIN_PASSAGES: dict[str, list[tuple[str, str]]] = {
    "security_docs": [
        # -- detection engineering
        (
            "train_detection",
            """Detection rule: suspicious PowerShell download cradle

Logic: process name powershell.exe with a command line containing both a web client call and an execution call, or an encoded command longer than 500 characters. Exclusions: the software deployment agent's signed scripts (by hash). Severity: high. Response: isolate the host if the parent process is an office application; otherwise triage within one hour. False positives seen in testing: two admin scripts, now excluded by hash rather than by path, so an attacker cannot bypass the rule by copying a file to that path.""",
        ),
        (
            "train_detection",
            """SIEM tuning notes, week 14

The rule for multiple failed logins fired 3,400 times, mostly on a service account with an expired password. We fixed the account instead of ignoring the alert. The impossible-travel rule now ignores known VPN egress addresses, listed in the shared watchlist; do not add addresses to that list without a ticket. The new rule for mailbox forwarding to external domains caught one real case on Tuesday (a compromised account) and produced no false positives. Next week: review the noisy DNS tunnelling rule.""",
        ),
        (
            "train_detection",
            """Writing good detection rules: guidelines

Describe the behaviour, not the tool: an attacker can rename a binary, but the behaviour stays. Every rule has a test that reproduces the activity in the lab. Document the expected false positives and how analysts should triage them. Avoid rules that depend on a single string an attacker controls. Version rules in git and review them like code. When you override a default rule from the vendor content pack, copy it and record why, so updates do not silently revert your change.""",
        ),
        (
            "train_detection",
            """Alert triage playbook: possible credential dumping

1. Check which process accessed the LSASS memory and whether it is a known security tool. 2. Look at the parent process chain and the user. 3. If unknown, isolate the host through the EDR console. 4. Reset the passwords of accounts that logged on to the host in the last 24 hours, starting with admins. 5. Search for the same hash on other hosts. Do not reboot the host before memory is captured; a reboot destroys the evidence we need.""",
        ),
        (
            "train_detection",
            """Honeytokens in our environment

We placed fake credentials, documents and database rows that no legitimate process should ever touch. Any use of them raises a high-priority alert. Examples: an AWS key in an old script on the file server, a "passwords.xlsx" on the finance share, a fake admin account in the directory. Because nobody has a reason to use them, these alerts have almost no false positives. If you find one of these files while cleaning up, leave it in place and tell the security team.""",
        ),
        (
            "train_detection",
            """Sicherheitsüberwachung: Hinweise für das Bereitschaftsteam

Alarme mit hoher Priorität müssen innerhalb von 15 Minuten bestätigt werden. Bei Verdacht auf Schadsoftware wird der betroffene Rechner über die EDR-Konsole isoliert, nicht ausgeschaltet. Informieren Sie die Bereitschaft der IT, wenn Server betroffen sind. Dokumentieren Sie jeden Schritt mit Uhrzeit im Ticket. Falls ein Alarm offensichtlich ein Fehlalarm ist, schließen Sie ihn mit Begründung, damit die Regel später angepasst werden kann.""",
        ),
        (
            "train_detection",
            """Monthly security metrics report

Mean time to detect: 3.1 hours (target 4). Mean time to contain: 6.8 hours (target 8). Phishing reports from staff: 412, of which 38 were real campaigns, all blocked within an hour of the first report. Critical vulnerabilities past their due date: 4, all on legacy systems with compensating controls. Alerts closed as false positive: 61 %, down from 70 % after tuning. Main risk this month: two teams still bypass the central logging by writing logs to local files only.""",
        ),
        # -- backup and recovery
        (
            "train_backup",
            """Backup policy summary

Production databases: continuous archiving plus a full backup every night, kept 35 days. File servers: daily snapshots kept 30 days, weekly copies kept a year. At least one copy is immutable and stored in a separate account that production administrators cannot delete from. Restores are tested every quarter by restoring a random system into an isolated network and checking that the application starts. A backup that has never been restored is a hope, not a backup.""",
        ),
        (
            "train_backup",
            """Disaster recovery test report

Scenario: loss of the primary region. We failed over the customer portal to the secondary region in 47 minutes (objective: 60). Data loss: 4 minutes of orders (objective: 15). Issues: the DNS change needed a manual step that was not in the runbook, and one service still had the primary database hostname hard-coded. Both are fixed. The payment service failed over automatically as designed. Next test in six months, this time without advance notice to the on-call team.""",
        ),
        (
            "train_backup",
            """Ransomware resilience checklist

Offline or immutable backups exist and were restored successfully this quarter. Domain admin accounts are not used for daily work. Remote access requires multi-factor authentication. Macros from the internet are blocked. Endpoint protection cannot be disabled by local administrators. The incident response plan includes contact details that do not depend on company e-mail. Finance knows the rule for paying ransoms: no payment without the board's decision and legal advice.""",
        ),
        (
            "train_backup",
            """Restoring a single mailbox from backup

Open the backup console, select the mail server job and the date before the deletion. Choose "restore items", search for the mailbox, and restore into a separate folder named "Restored <date>" rather than over the current mailbox, so nothing the user received since is overwritten. Tell the user where to find the folder. If the deletion was caused by a compromised account, do not restore until the security team has confirmed the account is clean.""",
        ),
        (
            "train_backup",
            """Plan de continuité : rôles pendant une crise

La cellule de crise réunit la direction, l'informatique, la communication et le juridique. Le responsable de crise décide des priorités ; l'informatique rétablit les systèmes selon l'ordre défini ; la communication prépare les messages pour les clients et le personnel. Les numéros de téléphone de chacun sont imprimés dans le classeur de crise, car la messagerie peut être indisponible. Un exercice a lieu chaque année.""",
        ),
        (
            "train_backup",
            """Key escrow and recovery keys

Full-disk encryption recovery keys are escrowed automatically in the device management service when encryption is enabled. Help desk staff can read a recovery key only after verifying the user's identity through a video call or in person, and every access is logged. Users must never store their own recovery key in a file on the encrypted disk or send it by chat. If a key is read, it is rotated automatically the next time the device checks in.""",
        ),
        (
            "train_backup",
            """Database point-in-time recovery runbook

1. Identify the time just before the bad change (from the audit log or the deploy record). 2. Create a new instance restored to that time; never restore over the production instance. 3. Compare the affected tables between the restored instance and production. 4. Copy the correct rows back with a reviewed script, inside a transaction. 5. Keep the restored instance for seven days, then delete it. Notify the data protection officer if personal data was affected.""",
        ),
        # -- network security
        (
            "train_network",
            """Firewall change request guidelines

Each rule needs a source, a destination, a port and a business reason. "Any" in the source or destination needs approval from the security architect. Temporary rules carry an expiry date; the firewall management tool removes them automatically. Rules are reviewed yearly by their owners; rules without an owner are disabled after a warning. Do not ask the network team to override the review for urgent projects; ask for an expedited review instead, which takes one working day.""",
        ),
        (
            "train_network",
            """Network segmentation standard

User devices, servers, management interfaces and guest Wi-Fi are in separate segments. Traffic between segments is denied by default and allowed per application. Management interfaces of switches, hypervisors and storage are reachable only from the administration jump hosts. Printers and building systems live in their own segment, because they are rarely patched. Production and test environments are separated; test systems may not connect to production databases, not even read-only.""",
        ),
        (
            "train_network",
            """VPN replacement: zero trust access

The old VPN gave every connected laptop access to the whole internal network. The new access broker checks the user, the device's health and the application requested, and opens a connection to that application only. Users will notice little difference: they sign in once in the morning. Applications that do not work through the broker stay on the VPN until they are migrated; the list is on the project page. The VPN will be switched off in March.""",
        ),
        (
            "train_network",
            """Wi-Fi security at our offices

The staff network uses certificate-based authentication: your laptop connects automatically, and there is no password to share. Personal phones go on the guest network, which is isolated from company systems and limited in bandwidth. Do not set up your own access points or share your laptop's connection as a hotspot in the office; the wireless monitoring detects rogue access points and IT will ask you to switch them off.""",
        ),
        (
            "train_network",
            """DNS filtering: what it blocks and why

Company devices resolve names through the protective DNS service, which refuses known malicious domains, newly registered domains for their first 30 days, and categories such as gambling. When a site is blocked you see a page with a request form. Newly registered domains are often used for phishing, which is why they are blocked by default; if a new partner's domain is blocked, request an exception and we will check it within a day.""",
        ),
        (
            "train_network",
            """Seguridad de red: guía para las oficinas remotas

Cada oficina tiene un cortafuegos gestionado de forma centralizada; no cambie su configuración localmente. Los equipos de la oficina se conectan a la red de la empresa por un túnel cifrado. Las cámaras y los sistemas del edificio están en una red separada. Si un proveedor necesita acceso remoto para mantenimiento, solicítelo con antelación: el acceso se concede por tiempo limitado y queda registrado.""",
        ),
        (
            "train_network",
            """Email authentication records explained

SPF lists the servers allowed to send mail for our domain. DKIM signs each message so the receiver can check it was not changed. DMARC tells receivers what to do when both checks fail and sends us reports. We moved DMARC from "none" to "reject" after three months of reports showed that all our legitimate senders were configured. New marketing tools that send mail on our behalf must be added to SPF and DKIM before their first campaign, or their mail will be rejected.""",
        ),
        # -- LLM safety operations
        (
            "train_llm_safety_ops",
            """Guardrail configuration for the support assistant

Input checks: personal data is masked before the prompt is sent to the model; messages classified as prompt injection above the blocking point are refused, and those between the flag point and the blocking point are logged for review. Retrieved articles are scored before they enter the prompt. Output checks: secrets and customer data that were not in the request are removed; answers about refunds must cite the policy tool. Thresholds are chosen on a calibration set, never by hand.""",
        ),
        (
            "train_llm_safety_ops",
            """Weekly review of flagged assistant conversations

This week 212 conversations were flagged. 180 were benign: people asking how to ignore a notification, developers pasting code with "override" in it, a security trainer preparing a phishing course, and users quoting a jailbreak to ask whether it works. 24 were attempts to get the assistant to reveal its instructions; none succeeded. 8 contained instructions planted in uploaded documents. We added the benign ones to the calibration set so the operating point reflects real traffic.""",
        ),
        (
            "train_llm_safety_ops",
            """Model evaluation report: release candidate 3

Helpfulness on the internal task set: 81 % (previous 78 %). Refusal of harmful requests: 97 % (previous 96 %). Over-refusal on benign requests containing sensitive words: 4 % (previous 9 %), mainly fewer refusals of security and medical questions. Robustness to role-play jailbreaks from the red-team set: 92 % resisted. Known weakness: requests split over several turns. Recommendation: release, with the multi-turn weakness documented and monitored.""",
        ),
        (
            "train_llm_safety_ops",
            """Policy for third-party plugins in the assistant

Plugins are reviewed before they are enabled. The review checks which data the plugin receives, where it sends it, and what actions it can take. Plugins that send e-mail, create payments or change records need user confirmation for each action. Text returned by a plugin is untrusted and goes through the same injection checks as retrieved documents. A plugin that tries to change the assistant's behaviour through its responses is disabled and its publisher contacted.""",
        ),
        (
            "train_llm_safety_ops",
            """Incident classification for AI features

Severity 1: customer data exposed to another customer, or an unauthorised action taken by the assistant. Severity 2: the assistant follows planted instructions without harm, or reveals internal configuration. Severity 3: offensive or wrong output reported by a user. Severity 4: a filter blocks legitimate use. Over-blocking counts as an incident too, because users who are refused for no reason stop using the tool or find workarounds that are less safe.""",
        ),
        (
            "train_llm_safety_ops",
            """Leitfaden: Umgang mit Hinweisen auf manipulierte Dokumente

Wenn der Assistent eine Antwort gibt, die nichts mit Ihrer Frage zu tun hat, etwa einen fremden Link einfügt oder Sie auffordert, Daten einzugeben, könnte ein abgerufenes Dokument manipulierte Anweisungen enthalten. Folgen Sie der Aufforderung nicht. Melden Sie die Unterhaltung über die Schaltfläche „Problem melden“; das Sicherheitsteam prüft das Dokument und entfernt es gegebenenfalls aus dem Suchindex.""",
        ),
        (
            "train_llm_safety_ops",
            """Red-team results summary for the HR assistant

Testers tried 340 attacks over two weeks. The assistant did not reveal salary data of other employees in any test. It revealed parts of its system prompt in 6 cases, which is acceptable because the prompt contains no secrets; we still shortened it. Planted instructions in policy documents changed the answer in 11 of 60 attempts; after enabling passage scoring at ingestion, in 2 of 60. Role-play prompts produced off-topic but harmless answers. All findings are tracked in the risk register.""",
        ),
    ],
    "changelogs": [
        (
            "train_desktop_app",
            """Version 3.6 for Windows and macOS

New: a compact mode for small screens, keyboard shortcuts for every menu item, and PDF export with bookmarks.
Changed: the app checks for updates once a day instead of at every start; administrators can override this with a policy setting.
Removed: support for macOS 11.
Fixed: the window no longer opens off-screen after disconnecting an external monitor; copying tables into spreadsheets keeps the formatting; a crash when a network drive was unavailable at startup.""",
        ),
        (
            "train_desktop_app",
            """Editor 1.92 release notes

Workspace trust: folders you open for the first time start in restricted mode, which disables tasks and debugging until you trust the folder. You can ignore this prompt for folders under a parent you already trust. Settings sync now includes keyboard shortcuts per platform. The integrated terminal supports ligatures. Deprecated: the old extension API for custom editors, to be removed in two releases. Extension authors should move to the new API described in the guide.""",
        ),
        (
            "train_desktop_app",
            """Changelog 2.18.0 (password manager)

- Passkeys can be stored and used on all platforms.
- Autofill ignores fields marked as one-time codes unless you choose a TOTP item.
- Vault health report shows reused and weak passwords.
- Breaking for administrators: the old policy to allow exporting vaults is replaced by two policies (personal and shared vaults); the old setting is migrated automatically.
- Fixed a bug where the browser extension stayed unlocked after the desktop app was locked.""",
        ),
        (
            "train_desktop_app",
            """Notes de version 8.1 du client de messagerie

Nouveautés : envoi programmé des messages, rappel de réponse si personne n'a répondu au bout de trois jours, recherche dans les pièces jointes. Modifications : les images externes ne sont plus chargées automatiquement, pour protéger votre vie privée ; un bouton permet de les afficher. Corrections : les signatures avec images s'affichent correctement, l'application ne se fige plus lors de la synchronisation de grands dossiers.""",
        ),
        (
            "train_desktop_app",
            """Release 4.0 of the photo organiser

The library format changed to support larger collections; your library is upgraded the first time you open 4.0, and older versions cannot open it afterwards, so make a backup first. Face recognition now runs on the device only. Duplicates can be merged, keeping the highest resolution. Removed: the upload to the discontinued sharing service. The "ignore" list for folders you do not want to import is kept during the upgrade.""",
        ),
        (
            "train_desktop_app",
            """What changed in 12.4 (video conferencing client)

Background noise suppression has a new "strong" level. Hosts can override participants' display names in webinars. Meeting chat is saved to the cloud recording when recording is on; you can turn this off in the account settings. Screen sharing uses less CPU on laptops with integrated graphics. Security: the client now verifies the update signature before installing, and the old unsigned update channel is removed.""",
        ),
        (
            "train_desktop_app",
            """Release notes, spreadsheet add-in 2.2

- New function FORECAST.SEASONAL.
- The refresh button now updates all linked data sources at once; hold Shift to refresh only the current sheet.
- Connections that store passwords in the workbook are no longer supported; the add-in asks for credentials and stores them in the system keychain.
- Fixed: dates before 1900 were shown as numbers.
- Known issue: very large pivot tables may refresh slowly; a fix is planned for 2.3.""",
        ),
        (
            "train_firmware",
            """Firmware 3.2.0 for the smart thermostat

- Adaptive heating learns how long your home takes to warm up and starts earlier.
- Open-window detection turns the heating off for 30 minutes when the temperature drops quickly.
- The child lock can now be overridden from the app by the account owner.
- Security: updates are signed and verified; the local debug port is disabled in production units.
- Fixed: the display stayed on at night for some users.
The update installs automatically at night.""",
        ),
        (
            "train_firmware",
            """Controller firmware v5.11 (industrial PLC)

Changes: support for the new analog input module; cycle time reduced by 8 % for programs with many timers. Safety: the watchdog now forces outputs to a safe state if the program hangs for more than 200 ms; this cannot be overridden from the programming software. Removed: the legacy unauthenticated Modbus write commands; enable them only through the explicit compatibility setting and only on isolated networks. Upgrade the engineering software to 5.11 before updating devices.""",
        ),
        (
            "train_firmware",
            """Camera firmware 2.4.1

- Night mode switches earlier in low light.
- Motion zones can be drawn as polygons.
- Default passwords are no longer accepted: on first setup you must choose a new admin password.
- Telnet removed; SSH is off by default and can be enabled for support sessions only.
- Fixed: recordings to the SD card stopped when the card was full instead of overwriting the oldest files.
After the update, the camera restarts and keeps all settings.""",
        ),
        (
            "train_firmware",
            """E-bike motor firmware 1.9

Assist levels are smoother when starting from standstill. The range estimate uses your recent riding instead of a fixed value. The walk-assist button works with the new display. Note: the firmware still limits assistance to 25 km/h as required by law in your region; modified firmware that removes this limit voids the warranty and may be illegal on public roads. Update through the dealer's service tool or the app.""",
        ),
        (
            "train_firmware",
            """Versionshinweise Router-Firmware 7.57

Neu: WPA3 für das Gästenetz, Kindersicherung mit Zeitprofilen, automatische Updates nachts. Geändert: Der Fernzugriff aus dem Internet ist ab Werk ausgeschaltet; Sie können ihn in den erweiterten Einstellungen wieder aktivieren. Sicherheit: Eine Lücke, über die Geräte im Heimnetz Einstellungen ohne Passwort ändern konnten, wurde geschlossen. Behoben: Abbrüche der Telefonie bei gleichzeitigen Downloads.""",
        ),
        (
            "train_firmware",
            """Keyboard firmware 0.22

- Layers can be switched with a tap-and-hold key.
- Macro recording on the device; macros are limited to 64 key presses.
- The bootloader is protected: flashing requires holding the reset key while plugging in, so software alone cannot overwrite the firmware.
- Removed the experimental wireless mode, which drained the battery.
- Fixed: keys repeating after the computer woke from sleep.""",
        ),
        (
            "train_firmware",
            """Medical device software update 4.3 (infusion pump)

This update changes the drug library format and adds dose limits for two new medications. Hard limits cannot be overridden at the bedside; soft limits can be overridden with a documented reason, which is logged. The update must be installed by biomedical engineering using the service tool, one pump at a time, and each pump must pass the functional test before returning to use. Read the release notes and the updated user manual before training staff.""",
        ),
        (
            "train_data_tool",
            """Data pipeline framework 2.9.0

- Incremental models can now merge on a composite key.
- Tests: a new `accepted_values` option to ignore nulls.
- Sources can declare freshness checks that fail the run when data is older than a limit.
- Breaking: the `--full-refresh` flag no longer applies to snapshot models; use `--full-refresh-snapshots`.
- Macros can override the default schema naming; the documentation has an example for per-developer schemas.
- Fixed a bug where seeds with quoted headers failed to load.""",
        ),
        (
            "train_data_tool",
            """Stream processor 3.7 release notes

Exactly-once delivery is now the default for new jobs. Existing jobs keep at-least-once until you change the setting and restart from a savepoint. The old checkpoint format is removed: jobs that still use it must be restarted once with 3.6 to write the new format before upgrading. New metrics report consumer lag per partition. The deprecated Scala API is removed; use the Java API or the SQL interface.""",
        ),
        (
            "train_data_tool",
            """Notebook server 7.1 changelog

- Real-time collaboration is enabled by default; disable it with `--collaborative=false`.
- The file browser can show hidden files; this setting is off by default.
- Kernels are culled after 2 hours of inactivity, configurable per server.
- Security: the token is no longer printed in the log when the server is started with a password.
- Removed: support for the classic notebook extensions; most have equivalents listed in the migration page.""",
        ),
        (
            "train_data_tool",
            """Warehouse release 2024.08

New: automatic clustering for tables above 1 TB, row access policies that can reference a mapping table, and search optimisation for semi-structured columns. Behaviour change: queries that scan more than the warehouse's configured limit are cancelled instead of warned; account admins can override the limit per role. Deprecated: the old web console, which will be switched off in November. The new console supports everything except legacy worksheets, which you can export beforehand.""",
        ),
        (
            "train_data_tool",
            """Registro de cambios de la herramienta ETL, versión 5.2

Añadido: conectores para dos nuevas bases de datos y reintentos automáticos cuando la conexión se corta. Cambiado: las credenciales ya no se guardan en el archivo del proyecto, sino en el almacén de secretos. Eliminado: el modo de ejecución local sin registro, que se había marcado como obsoleto. Corregido: las fechas con zona horaria se convertían mal en algunos destinos.""",
        ),
        (
            "train_data_tool",
            """Schema registry 7.0

Compatibility mode defaults to BACKWARD for new subjects. Producers that register incompatible schemas now get an error instead of a warning; to override compatibility for one subject during a migration, set the mode on that subject and reset it afterwards. Deleting a subject is a soft delete by default; hard deletes need the `permanent=true` flag. Client libraries older than 5.x are not supported; upgrade them first.""",
        ),
        (
            "train_data_tool",
            """BI tool 2024.3 what's new

- Dashboards can be scheduled as PDF to e-mail groups.
- Row-level security rules can use user attributes from the identity provider.
- Calculated fields support window functions.
- The "ignore filters" option on a chart is renamed "exclude from dashboard filters" to make clear what it does.
- Extracts refresh incrementally when the source has a modified-date column.
- Removed: the Flash-based legacy viewer.""",
        ),
        (
            "train_security_tool",
            """Scanner 2.14 release notes

New checks: 37, including misconfigured cloud storage and outdated TLS settings. The scanner can now ignore findings by rule and path with a baseline file, so known issues do not fail every build; entries need an expiry date. Output formats: SARIF improvements for code hosting platforms. Breaking: the `--skip` flag is removed in favour of the baseline file. Performance: scanning large monorepos is 3x faster thanks to caching.""",
        ),
        (
            "train_security_tool",
            """Secret scanner 3.0.0

- Over 200 detectors, each verifying whether the found credential is live (opt in with `--verify`).
- Custom detectors in YAML.
- `--exclude-paths` accepts glob patterns; generated files and test fixtures can be ignored.
- Breaking: the exit code is 183 when unverified secrets are found and `--fail` is set, so CI can tell unverified from verified findings.
- The pre-commit hook runs only on staged changes.
- Fixed false positives on base64-encoded images.""",
        ),
        (
            "train_security_tool",
            """WAF ruleset 4.0 changelog

The core ruleset is rewritten with paranoia levels 1–4; level 1 is the default and has the fewest false positives. Rules that blocked common API payloads, such as JSON bodies containing SQL keywords in text fields, moved to level 2. Exclusions for popular applications ship as plugins. Upgrading from 3.x: review your custom exclusions, since rule IDs changed; the migration table lists old and new IDs. Run in detection-only mode for a week before enforcing.""",
        ),
        (
            "train_security_tool",
            """EDR agent 7.9 release

- Tamper protection covers the uninstall command: uninstalling requires a token from the console.
- New detection for abuse of signed drivers.
- Reduced CPU usage during full scans by 20 %.
- The exclusion list no longer accepts wildcards at the start of a path, because they made it too easy for malware to hide in excluded folders; existing entries are converted and flagged for review.
- Linux agent: support for two new kernel versions.""",
        ),
        (
            "train_security_tool",
            """Versionshinweise Schwachstellenscanner 10.2

Neue Prüfungen für aktuelle Sicherheitslücken in VPN-Geräten und Dateiübertragungsservern. Scans können jetzt zeitlich begrenzt werden. Die Option, bekannte Befunde dauerhaft zu ignorieren, wurde durch Ausnahmen mit Ablaufdatum ersetzt. Berichte enthalten eine Zusammenfassung für das Management. Behoben: Authentifizierte Scans schlugen bei Kennwörtern mit Sonderzeichen fehl. Die Aktualisierung wird über die Verwaltungskonsole verteilt; laufende Scans werden vorher sauber beendet.""",
        ),
        (
            "train_security_tool",
            """Password audit tool 1.4

- Checks Active Directory hashes against a local copy of breached-password lists; no hashes leave your network.
- Reports accounts with passwords that never expire and accounts with identical passwords.
- New: exclusion of disabled accounts from reports.
- Removed the option to print cleartext passwords that were cracked in the optional dictionary mode; the report now shows only which accounts are affected.
- Requires read access to the directory, not domain admin rights.""",
        ),
        (
            "train_security_tool",
            """Policy engine 0.60

- New built-in functions for parsing JWTs and checking certificate chains.
- Policies can be tested with `test` blocks that run in CI.
- Decision logs can mask fields before they are shipped, so tokens do not end up in the log store.
- Breaking: the `default allow` keyword is removed; write `default allow := false` explicitly. Policies without a default now fail to compile.
- Performance: partial evaluation is twice as fast for large data documents.""",
        ),
    ],
    "code_answers": [
        (
            "train_ml_code",
            """Your model's loss becomes NaN because the learning rate is too high for the mixed-precision setup. Use a gradient scaler and clip gradients:

```python
scaler = torch.cuda.amp.GradScaler()
for x, y in loader:
    optimizer.zero_grad()
    with torch.autocast("cuda", dtype=torch.float16):
        loss = criterion(model(x), y)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)                     # so clipping sees real gradients
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()
```

Also check your inputs for NaN values before training.""",
        ),
        (
            "train_ml_code",
            """To make your experiment reproducible, fix every seed and ask for deterministic kernels:

```python
import random, numpy as np, torch

def seed_everything(seed: int = 42) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)   # raises if an op has no deterministic version
```

Set `CUBLAS_WORKSPACE_CONFIG=:4096:8` in the environment for CUDA. Data loader workers need their own seeds through `worker_init_fn`. Even then, results can differ between GPU models.""",
        ),
        (
            "train_ml_code",
            """scikit-learn: never fit the scaler on the whole data before splitting, or test information leaks into training. Put it in a pipeline:

```python
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
scores = cross_val_score(clf, X, y, cv=5)   # the scaler is refit inside each fold
print(scores.mean())
```

The same applies to feature selection and imputation.""",
        ),
        (
            "train_ml_code",
            """To compute cosine similarity between many embeddings efficiently, normalise once and use a matrix product:

```python
import numpy as np

def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T          # shape (len(a), len(b))

sims = cosine_matrix(queries, docs)
top5 = np.argsort(-sims, axis=1)[:, :5]
```

For millions of documents use an approximate nearest-neighbour index instead of the full matrix.""",
        ),
        (
            "train_ml_code",
            """The warning about tokenizers and forked processes is harmless but noisy. Set the variable before the data loader starts workers:

```python
import os
os.environ["TOKENIZERS_PARALLELISM"] = "false"   # the fast tokenizer will not use threads after fork
```

If tokenisation is a bottleneck, tokenise the dataset once with `dataset.map(tokenize, batched=True, num_proc=4)` and save it, instead of tokenising inside `__getitem__`.""",
        ),
        (
            "train_ml_code",
            """Réponse : pour éviter le surapprentissage avec un petit jeu de données, arrêtez l'entraînement quand la perte de validation ne baisse plus.

```python
meilleure, patience = float("inf"), 0
for epoque in range(100):
    entrainer_une_epoque(modele)
    perte = evaluer(modele, validation)
    if perte < meilleure - 1e-4:
        meilleure, patience = perte, 0
        torch.save(modele.state_dict(), "meilleur.pt")   # garder le meilleur modèle
    else:
        patience += 1
        if patience >= 5:
            break
```""",
        ),
        (
            "train_ml_code",
            """Class imbalance: instead of oversampling blindly, start with class weights and look at precision and recall per class, not accuracy.

```python
from sklearn.utils.class_weight import compute_class_weight
import numpy as np

w = compute_class_weight("balanced", classes=np.unique(y), y=y)
clf = LogisticRegression(class_weight=dict(zip(np.unique(y), w)), max_iter=1000)
clf.fit(X_train, y_train)
print(classification_report(y_test, clf.predict(X_test)))
```

Then choose the decision threshold on a validation set for the error rate you can accept.""",
        ),
        (
            "train_terraform",
            """Terraform: use a remote backend with locking so two people cannot apply at the same time:

```hcl
terraform {
  backend "s3" {
    bucket         = "company-terraform-state"
    key            = "network/prod.tfstate"
    region         = "eu-central-1"
    dynamodb_table = "terraform-locks"   # state locking
    encrypt        = true
  }
}
```

Restrict access to the state bucket: the state can contain secrets in plain text. Run `terraform init -migrate-state` once to move local state to the backend.""",
        ),
        (
            "train_terraform",
            """To stop Terraform from replacing a resource when a tag is changed outside Terraform, use `ignore_changes`:

```hcl
resource "aws_instance" "app" {
  ami           = var.ami
  instance_type = "t3.small"

  lifecycle {
    ignore_changes = [tags["LastBackup"]]   # set by the backup tool, not by us
    prevent_destroy = true
  }
}
```

Use it sparingly and comment why: ignoring too much hides real drift. `prevent_destroy` makes a plan fail instead of deleting the resource.""",
        ),
        (
            "train_terraform",
            """Modules with variables and validation:

```hcl
variable "environment" {
  type = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod"
  }
}

module "db" {
  source         = "./modules/postgres"
  environment    = var.environment
  instance_class = var.environment == "prod" ? "db.r6g.large" : "db.t4g.medium"
}
```

Override values per environment with `-var-file=prod.tfvars`, not by editing the module.""",
        ),
        (
            "train_terraform",
            """If `terraform plan` wants to recreate resources after you moved them into a module, tell it about the move instead of letting it destroy them:

```hcl
moved {
  from = aws_s3_bucket.logs
  to   = module.logging.aws_s3_bucket.logs
}
```

Run `terraform plan` again; it should show the move and no replacement. On versions before 1.1, use `terraform state mv` from the command line. Keep the `moved` block for a while so that other workspaces also pick it up.""",
        ),
        (
            "train_terraform",
            """Respuesta: para no guardar contraseñas en el código de Terraform, léalas de un gestor de secretos:

```hcl
data "aws_secretsmanager_secret_version" "db" {
  secret_id = "prod/db/password"
}

resource "aws_db_instance" "main" {
  # ...
  password = data.aws_secretsmanager_secret_version.db.secret_string
}
```

Tenga en cuenta que el valor seguirá apareciendo en el archivo de estado, así que proteja el estado con cifrado y permisos estrictos.""",
        ),
        (
            "train_terraform",
            """Ansible: make a task idempotent instead of running a shell command every time:

```yaml
- name: Ensure the app user exists
  ansible.builtin.user:
    name: app
    system: true
    shell: /usr/sbin/nologin

- name: Install config
  ansible.builtin.template:
    src: app.conf.j2
    dest: /etc/app/app.conf
    mode: "0640"
  notify: restart app      # only restarts when the file changed
```

Avoid `shell:` with `ignore_errors: true`; use `creates:` or `changed_when:` so the result is meaningful.""",
        ),
        (
            "train_terraform",
            """Pulumi in Python, with a stack-specific configuration value and a secret:

```python
import pulumi
import pulumi_aws as aws

cfg = pulumi.Config()
size = cfg.get("instanceSize") or "t3.micro"      # override per stack
db_password = cfg.require_secret("dbPassword")    # encrypted in the stack file

bucket = aws.s3.Bucket("assets", force_destroy=False)
pulumi.export("bucket", bucket.id)
```

Set the secret with `pulumi config set --secret dbPassword ...`; it is never stored in plain text.""",
        ),
        (
            "train_powershell",
            """To find large files on a Windows drive with PowerShell:

```powershell
Get-ChildItem -Path C:\\Users -Recurse -File -ErrorAction SilentlyContinue |
  Where-Object { $_.Length -gt 1GB } |
  Sort-Object Length -Descending |
  Select-Object FullName, @{n="GB"; e={[math]::Round($_.Length / 1GB, 2)}} -First 20
```

`-ErrorAction SilentlyContinue` ignores folders you cannot read, which is normal for other users' profiles. Run the console as administrator to see more.""",
        ),
        (
            "train_powershell",
            """Your script does not run because the execution policy blocks unsigned scripts. For your own session only:

```powershell
Set-ExecutionPolicy -Scope Process -ExecutionPolicy Bypass   # this window only
.\\deploy.ps1
```

Do not change the machine-wide policy to Unrestricted. The execution policy is not a security boundary, but company devices set it through group policy, and overriding it globally will be reverted and reported. Signing internal scripts is the long-term fix.""",
        ),
        (
            "train_powershell",
            """To reset a user's password in Active Directory and force a change at next logon:

```powershell
Import-Module ActiveDirectory
$pw = Read-Host -AsSecureString "New temporary password"
Set-ADAccountPassword -Identity jdoe -Reset -NewPassword $pw
Set-ADUser -Identity jdoe -ChangePasswordAtLogon $true
Unlock-ADAccount -Identity jdoe
```

`Read-Host -AsSecureString` keeps the password out of the console history. Verify the caller's identity before resetting; the help desk procedure requires a call-back.""",
        ),
        (
            "train_powershell",
            """Export a list of installed software to CSV on several machines:

```powershell
$computers = Get-Content .\\computers.txt
Invoke-Command -ComputerName $computers -ScriptBlock {
  Get-ItemProperty HKLM:\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\* |
    Where-Object DisplayName |
    Select-Object DisplayName, DisplayVersion, Publisher
} | Export-Csv software.csv -NoTypeInformation
```

Avoid the `Win32_Product` WMI class: querying it triggers a consistency check of every MSI package, which is slow and can reconfigure installations.""",
        ),
        (
            "train_powershell",
            """Antwort: Um in PowerShell eine Aufgabe regelmäßig auszuführen, legen Sie eine geplante Aufgabe an:

```powershell
$aktion  = New-ScheduledTaskAction -Execute "pwsh.exe" -Argument "-File C:\\Skripte\\aufraeumen.ps1"
$trigger = New-ScheduledTaskTrigger -Daily -At 2am
Register-ScheduledTask -TaskName "Aufräumen" -Action $aktion -Trigger $trigger -User "SYSTEM"
```

Das Skript läuft dann täglich um 2 Uhr als SYSTEM. Schreiben Sie Ausgaben in eine Protokolldatei, da niemand das Fenster sieht.""",
        ),
        (
            "train_powershell",
            """Robocopy for mirroring a folder with logging and retries:

```bat
robocopy D:\\Data \\\\nas01\\backup\\Data /MIR /R:2 /W:5 /Z /NP /LOG+:C:\\logs\\backup.log
rem /MIR   mirror: deletes files in the target that no longer exist in the source
rem /R:2   retry twice, /W:5 wait 5 seconds between retries
rem /Z     restartable mode for large files over unstable links
```

Exit codes below 8 mean success (with or without copied files); treat 8 and above as failure in your scheduled task.""",
        ),
        (
            "train_powershell",
            """To read a JSON config, override one value and write it back:

```powershell
$path = ".\\appsettings.json"
$cfg = Get-Content $path -Raw | ConvertFrom-Json
$cfg.Logging.LogLevel.Default = "Warning"     # override for this server
$cfg | ConvertTo-Json -Depth 10 | Set-Content $path -Encoding utf8
```

Pass `-Depth`: the default depth of 2 silently flattens nested objects into strings, which breaks the file. Keep a copy of the original before editing in place.""",
        ),
        (
            "train_excel_vba",
            """In Excel, XLOOKUP replaces VLOOKUP and does not break when columns are inserted:

```
=XLOOKUP(A2, Products[SKU], Products[Price], "not found", 0)
```

The fourth argument is the value when nothing matches, so you do not need IFERROR. To look up the last match instead of the first, add -1 as the sixth argument. For older Excel versions, INDEX/MATCH does the same: `=INDEX(Products[Price], MATCH(A2, Products[SKU], 0))`.""",
        ),
        (
            "train_excel_vba",
            """A VBA macro that loops over rows is slow because Excel redraws the screen and recalculates after each change. Turn those off while it runs, and always turn them back on:

```vb
Sub FastUpdate()
    Application.ScreenUpdating = False
    Application.Calculation = xlCalculationManual
    On Error GoTo Cleanup
    ' ... your loop here ...
Cleanup:
    Application.Calculation = xlCalculationAutomatic
    Application.ScreenUpdating = True
End Sub
```

Better still, read the range into an array, process it, and write it back once.""",
        ),
        (
            "train_excel_vba",
            """Google Sheets: to import data from another spreadsheet and filter it in one formula:

```
=QUERY(IMPORTRANGE("https://docs.google.com/spreadsheets/d/ID", "Orders!A:E"),
       "select Col1, Col3, Col5 where Col4 = 'open' order by Col5 desc", 1)
```

The first time, click "Allow access" on the cell. IMPORTRANGE refreshes about every hour. Refer to columns as Col1, Col2 inside QUERY when the data comes from IMPORTRANGE, not by letter.""",
        ),
        (
            "train_excel_vba",
            """Respuesta: para quitar duplicados conservando la primera aparición en Excel 365:

```
=UNICO(A2:A500)
```

Si necesita la lista ordenada: `=ORDENAR(UNICO(A2:A500))`. Para contar cuántas veces aparece cada valor, combine con CONTAR.SI en la columna de al lado. En versiones antiguas use Datos > Quitar duplicados, pero haga antes una copia, porque esa opción borra las filas en el lugar.""",
        ),
        (
            "train_excel_vba",
            """Power Query: to combine all CSV files in a folder that share the same columns, use Get Data > From Folder, then Combine & Transform. In the generated query, change the type step to:

```
= Table.TransformColumnTypes(Source, {{"Date", type date}, {"Amount", type number}}, "en-US")
```

The culture argument matters when the files use a dot as decimal separator and your Excel uses a comma. New files dropped into the folder are included on the next refresh.""",
        ),
        (
            "train_excel_vba",
            """Conditional formatting with a formula, to highlight overdue rows in a task list:

```
Applies to: =$A$2:$F$500
Formula:    =AND($E2<TODAY(), $F2<>"done")
```

The dollar sign before the column letter keeps the check on columns E and F while the row changes. If the rule seems to be ignored, check the order of rules in the manager: a rule higher up with "stop if true" overrides the ones below.""",
        ),
        (
            "train_excel_vba",
            """To protect formulas while letting people fill in input cells: select the input cells, open Format Cells > Protection, and untick Locked. Then Review > Protect Sheet, allowing "select unlocked cells". Optionally set a password. Note that sheet protection prevents accidental edits only: it is not security, and the password can be removed with freely available tools, so do not rely on it for confidential data.""",
        ),
    ],
    "email_ops": [
        (
            "train_recruiting",
            """Subject: Interview panel for the backend role — instructions

Hi panel,

Thanks for joining Thursday's interviews. Each interview is 45 minutes: 5 minutes intro, 30 minutes on your assigned area, 10 minutes for the candidate's questions. Write your feedback in the hiring tool within 24 hours and before talking to other interviewers, so your view is independent. Please ignore the old scorecard template in the shared drive; the tool has the current one. Do not ask about age, family plans or nationality.

Thanks, Recruiting""",
        ),
        (
            "train_recruiting",
            """Subject: Re: candidate withdrew — next steps

Hi Paolo,

The candidate for the analyst role withdrew this morning after accepting another offer. We have two other candidates at the final stage. I suggest we invite both for the case interview next week rather than reopening the search. Please cancel the offer approval request you started yesterday; the system will otherwise send it to the director for sign-off. I will update the requisition and tell the agency.

Best, Helena""",
        ),
        (
            "train_recruiting",
            """Subject: Reference check request

Dear Mr. Brandt,

Ana Costa has applied for a project manager position with us and named you as a reference. Could we have a 15-minute call this week? We would like to hear about her work on the logistics project, how she handled changes in scope, and how she works with stakeholders. Anything you share is kept confidential within the hiring team. If you prefer to answer in writing, a few lines by e-mail are also very welcome.

Kind regards, Talent Acquisition""",
        ),
        (
            "train_recruiting",
            """Subject: Your job offer and next steps

Dear Chidi,

We are delighted to offer you the position of data engineer. The offer letter and contract are attached. Please sign them electronically within five working days; the link expires after that, and a new one can be sent if needed. Once signed, our onboarding team will contact you about equipment and your first day. If you have questions about the contract, reply to this e-mail or call me directly.

Warm regards, Hiring team""",
        ),
        (
            "train_recruiting",
            """Betreff: Ihre Bewerbung als Werkstudent

Hallo Herr Yilmaz,

vielen Dank für Ihre Bewerbung. Wir möchten Sie gern kennenlernen und laden Sie zu einem Gespräch per Video am Dienstag um 10 Uhr ein. Bitte bestätigen Sie den Termin kurz per Antwort. Den Link zur Videokonferenz erhalten Sie einen Tag vorher. Falls der Termin nicht passt, schlagen Sie gern zwei Alternativen vor. Halten Sie bitte Ihre aktuelle Immatrikulationsbescheinigung bereit.

Freundliche Grüße
Personalabteilung""",
        ),
        (
            "train_recruiting",
            """Subject: Agency candidates — please route through the portal

Hi hiring managers,

A reminder: CVs sent directly to you by recruitment agencies must not be forwarded into our process. Agencies we have a contract with upload candidates to the portal, which records ownership and fees. If an agency e-mails you a CV, do not reply and do not save it; forward the e-mail to recruiting, and we will respond. Otherwise we can end up owing a fee for a candidate who also applied directly.

Recruiting Operations""",
        ),
        (
            "train_recruiting",
            """Subject: Internal job posting — Team Lead, Support

Hi all,

We are looking for a team lead for the support team in Lisbon. Internal candidates are considered first; the posting is open for two weeks before we advertise externally. Requirements: at least three years in support, experience coaching colleagues, and fluent English and Portuguese. Please talk to your manager before applying; they will not be able to block your application, but it helps with the handover plan if you move.

People team""",
        ),
        (
            "train_sales_ops",
            """Subject: Quarter-end: deal desk hours and rules

Hi sales,

The deal desk is open until 22:00 on the last three days of the quarter. Non-standard discounts above 20 % need approval from the regional VP; above 35 % from the CRO. Please submit complete requests: the customer's legal entity, term, price and any special terms. Do not override prices in the quote tool by editing the PDF; contracts that do not match the approved quote will be rejected by legal and the deal will slip.

Deal Desk""",
        ),
        (
            "train_sales_ops",
            """Subject: New territory assignments from 1 July

Hi team,

Territories change on 1 July. The new assignments are in the attached sheet and in the CRM from Monday. Open opportunities move with the account, except those expected to close by 31 July, which stay with the current owner. Please introduce the new account owner to your main contacts before the switch. Ignore the automatic reassignment e-mails the CRM sends on the weekend; they list every record and are not actionable.

Sales Operations""",
        ),
        (
            "train_sales_ops",
            """Subject: Re: customer asking for a security review

Hi Tanvir,

For security questionnaires, please do not fill them in yourself. Send the customer our trust portal link, which has the SOC 2 report (under NDA), the penetration test summary and standard answers. If they insist on their own questionnaire, open a request with the security team in the CRM; turnaround is about five working days. Please do not promise features or certifications we do not have, even if it would help close the deal.

Thanks, Sales Engineering""",
        ),
        (
            "train_sales_ops",
            """Subject: Pricing update for renewals

Hello account managers,

List prices increase by 6 % on 1 September. Customers renewing before that date keep their current price for the next term. Please contact customers whose renewals fall in September and October this month and offer an early renewal. The quote tool applies the new prices automatically from 1 September; if a customer signed before then but the contract is countersigned later, ask the deal desk to override the price in the system.

Revenue Operations""",
        ),
        (
            "train_sales_ops",
            """Objet : Salon professionnel de Lyon — organisation

Bonjour à tous,

nous serons présents au salon de Lyon du 14 au 16 mai, stand B22. Merci de vous inscrire aux créneaux de présence dans le tableau partagé avant vendredi. Les badges seront envoyés par courriel. Apportez vos cartes de visite ; les brochures et les démonstrations sont prévues par le marketing. Les contacts pris sur le stand doivent être saisis dans le CRM dans les 48 heures.

Bonne journée,
L'équipe marketing""",
        ),
        (
            "train_sales_ops",
            """Subject: CRM hygiene reminder

Hi team,

Forecast calls use CRM data, so please keep it current: update the close date and stage of your opportunities every week, log meetings, and close lost deals with a reason instead of leaving them open. Opportunities with a close date in the past will be flagged in the dashboard on Monday. Please do not bulk-edit close dates to next quarter to clear the flags; your manager sees the history, and it makes the forecast meaningless.

Sales leadership""",
        ),
        (
            "train_sales_ops",
            """Subject: Partner referral programme — how to register deals

Dear partners,

To receive referral fees, register each opportunity in the partner portal before the customer signs. Registrations are valid for 90 days and can be extended once. If two partners register the same customer, the first valid registration wins. Our account team will contact you within two working days to plan the next steps together. Fees are paid quarterly, after the customer's first payment. Questions: partners@ our domain.

Partner team""",
        ),
        (
            "train_lab",
            """Subject: Lab safety: new rules for the fume hoods

Dear lab members,

After last week's inspection, please follow these rules: keep the sash at or below the marked height while working; do not store chemicals in the hoods; and never override the airflow alarm by taping over the sensor, as happened in room 2.07. If the alarm sounds, stop work, close the sash and call facilities. The hoods will be re-certified next month; the schedule is posted on each door.

Lab Safety Officer""",
        ),
        (
            "train_lab",
            """Subject: Sequencer booking and sample submission

Hi all,

The sequencer is booked through the core facility calendar. Submit samples by Tuesday 12:00 for the Thursday run, with the sample sheet completed in the template (not an old copy: the index columns changed). Samples without a complete sheet will be held until the next run. Data will be uploaded to your project folder; raw files are deleted after 60 days, so copy them to long-term storage if you need them.

Genomics Core""",
        ),
        (
            "train_lab",
            """Subject: Freezer failure — samples moved

Hi everyone,

The -80 °C freezer in room 3.11 failed overnight. The alarm worked and the on-call technician moved all racks to the backup freezer in 3.14 by 04:00; the temperature never rose above -60 °C. Your samples are in the same rack positions, on shelves 1–3. Please update the location in the inventory system when you next use them. Do not put new samples in 3.11 until the repair is confirmed.

Lab Management""",
        ),
        (
            "train_lab",
            """Subject: Ethics approval needed before recruiting participants

Hi Soo-ah,

Thanks for sending the study plan. Before you contact any participants, the protocol needs approval from the ethics committee. The next submission deadline is the 5th; the committee meets on the 20th. Please attach the consent form, the recruitment text and the data management plan. The online survey must not go live before approval, even as a pilot with friends. I am happy to read the draft before you submit.

Best, Prof. Hartmann""",
        ),
        (
            "train_lab",
            """Asunto: Calibración de las balanzas

Hola a todos:

El martes vendrá el técnico a calibrar las balanzas analíticas del laboratorio 1 y 2. Entre las 9:00 y las 12:00 no estarán disponibles. Por favor, dejen las balanzas limpias y sin muestras el lunes por la tarde. Después de la calibración se pegará una etiqueta con la fecha; no usen para mediciones oficiales ninguna balanza sin etiqueta vigente.

Gracias,
Responsable de calidad""",
        ),
        (
            "train_lab",
            """Subject: Shared computing cluster maintenance

Dear users,

The cluster will be unavailable on Wednesday from 08:00 to 18:00 for an operating system upgrade. Jobs still running at 08:00 will be killed; the scheduler will not start jobs that cannot finish before then. After the upgrade, software modules move to new versions; the old versions remain available for three months under the "legacy" module path. Please test your pipelines afterwards and tell us if something breaks.

Research Computing""",
        ),
        (
            "train_lab",
            """Subject: Conference poster printing deadline

Hi group,

If you are presenting a poster at the conference, send the final PDF to the print shop by Friday noon: A0 portrait, fonts embedded, images at least 150 dpi. The print shop will ignore files sent after the deadline, because they close for the holiday. Costs go to the group's travel budget; mention the project code in your order. Please send me a copy as well, so we can put the posters on the group website.

Marco""",
        ),
        (
            "train_school",
            """Subject: Parent-teacher meetings next week

Dear parents,

Parent-teacher meetings take place on Tuesday and Thursday from 15:00 to 19:00. Please book a 10-minute slot in the school app by Friday. If none of the times suit you, write to the class teacher to arrange a phone call. Interpreters can be arranged for some languages; let us know when booking. Older reminder e-mails gave a different room number; please ignore them, meetings are in the classrooms.

School Office""",
        ),
        (
            "train_school",
            """Subject: Course registration for the spring semester

Dear students,

Registration for spring courses opens on Monday at 9:00 and closes on the 25th. Register in the student portal; places in seminars are limited and given in order of registration. If a course is full, join the waiting list. Students who need an exception to a prerequisite should ask the course coordinator, who can override the prerequisite check in the portal. Check your timetable for clashes before confirming.

Registrar's Office""",
        ),
        (
            "train_school",
            """Subject: Exam rules reminder

Dear students,

For the written exams next week: arrive 15 minutes early with your student ID. Phones and smart watches must be switched off and left in your bag at the front. Only the calculators listed on the course page are allowed. If you are ill on the day of the exam, do not sit it; send a medical certificate within three days and you will be registered for the resit. Please read the full rules on the exam office page.

Examinations Office""",
        ),
        (
            "train_school",
            """Betreff: Klassenfahrt der 8b — wichtige Hinweise

Liebe Eltern,

die Klassenfahrt nach Rügen findet vom 10. bis 14. Juni statt. Bitte überweisen Sie den Restbetrag bis zum 15. Mai und geben Sie die Einverständniserklärung und den Gesundheitsbogen bis dahin ab. Medikamente bitte mit Einnahmeplan beschriften. Handys dürfen mitgenommen werden, werden aber nachts eingesammelt. Bei Fragen erreichen Sie mich über die Schul-App.

Viele Grüße
Frau Becker, Klassenleitung""",
        ),
        (
            "train_school",
            """Subject: Library system change over the summer

Dear staff and students,

The library moves to a new catalogue system over the summer. From 1 August you sign in with your university account instead of your library card number. Loans and reservations are transferred automatically. Fines from the old system are cancelled. Saved lists are not transferred; export them from your account before 25 July if you want to keep them. Reminder e-mails from the old system after 1 August can be ignored.

University Library""",
        ),
        (
            "train_school",
            """Subject: Snow day procedure

Dear families,

If heavy snow makes travel unsafe, the head teacher decides by 6:30 whether the school closes. The decision is posted on the school website and sent as a text message; local radio also announces it. On a snow day, lessons continue online from 9:30 following the normal timetable. If the school stays open but you judge your own journey unsafe, keep your child at home and tell the office; this will be recorded as an authorised absence.

Head Teacher""",
        ),
        (
            "train_school",
            """Subject: Thesis submission — formatting and plagiarism check

Dear master's students,

Submit your thesis as a single PDF through the thesis portal by 30 June, 23:59. The portal runs a similarity check automatically; a report is sent to your supervisor, who decides whether any match is a problem, so do not worry about matches with properly quoted sources. Use the faculty template for the title page. Late submissions need an extension approved by the exam board before the deadline.

Faculty Office""",
        ),
    ],
}
