# ruff: noqa: E501  (passages: one paragraph per line reads better than wrapped strings)
"""Hand-written benign passages: code answers (Q&A answers with code and comments, shell snippets,
configuration files; part of ``handwritten_passages``). Typed for the llmgw project (issue 17), never
copied from an evaluation set. Each entry is ``(topic group, text)``."""

from __future__ import annotations

CODE_ANSWERS: list[tuple[str, str]] = [
    # -- Python Q&A
    (
        "python_qa",
        """You can ignore a specific warning without silencing all of them with the warnings module:

```python
import warnings

# ignore only this deprecation, keep every other warning visible
warnings.filterwarnings(
    "ignore",
    message="datetime.utcnow",
    category=DeprecationWarning,
)
```

In pytest, prefer the marker so the filter is scoped to one test: `@pytest.mark.filterwarnings("ignore::DeprecationWarning")`. Do not put a blanket ignore in conftest.py, because you will miss the warning that tells you an API is about to be removed.""",
    ),
    (
        "python_qa",
        """The reason your override is never called is that `__init__` of the subclass does not call the parent's, so the attribute the parent sets is missing. Call `super().__init__()` first:

```python
class Base:
    def __init__(self):
        self.handlers = []

class Child(Base):
    def __init__(self, name):
        super().__init__()   # without this, self.handlers does not exist
        self.name = name

    def run(self):           # overrides Base.run
        return f"child {self.name}"
```

If you need the parent's behaviour too, call `super().run()` inside the override.""",
    ),
    (
        "python_qa",
        """To read a large CSV file without loading it all into memory, iterate over chunks:

```python
import pandas as pd

total = 0
for chunk in pd.read_csv("events.csv", chunksize=100_000, usecols=["user", "amount"]):
    # each chunk is a normal DataFrame
    total += chunk["amount"].sum()
print(total)
```

`usecols` skips the columns you do not need, which often matters more than the chunk size. If the file has bad lines, `on_bad_lines="skip"` ignores them; log how many you skipped so you notice when the input format changes.""",
    ),
    (
        "python_qa",
        """Answer: use a context manager so the file is closed even if an exception is raised.

```python
from pathlib import Path

def count_lines(path: str) -> int:
    # 'with' closes the file automatically
    with Path(path).open(encoding="utf-8", errors="replace") as fh:
        return sum(1 for _ in fh)
```

`errors="replace"` substitutes undecodable bytes instead of raising UnicodeDecodeError. Only do that for counting or logging; for real parsing you want the error so you can fix the encoding.""",
    ),
    (
        "python_qa",
        """`dict.get` returns None for missing keys, and your `if config.get("debug"):` treats an explicit `False` and a missing key the same. That is usually fine. When you need to tell "missing" from "set to a falsy value", use a sentinel:

```python
_MISSING = object()

value = config.get("timeout", _MISSING)
if value is _MISSING:
    value = 30          # default when the user did not set it
elif value is None:
    value = None        # user explicitly disabled the timeout
```

Environment variables can then override the file: `os.environ.get("APP_TIMEOUT", value)`.""",
    ),
    (
        "python_qa",
        """Respuesta: para ejecutar un comando externo y capturar su salida en Python, use subprocess.run con una lista de argumentos:

```python
import subprocess

# sin shell=True: los argumentos no pasan por el intérprete de comandos
result = subprocess.run(["git", "status", "--short"], capture_output=True, text=True, check=True)
print(result.stdout)
```

Con check=True se lanza una excepción si el comando falla. Evite shell=True con datos del usuario, porque permite inyectar comandos.""",
    ),
    (
        "python_qa",
        """The mock is not applied because you patch the name where it is defined, not where it is used. If `app/service.py` does `from app.client import fetch`, patch `app.service.fetch`:

```python
from unittest.mock import patch

@patch("app.service.fetch")          # where it is looked up
def test_service_uses_cache(mock_fetch):
    mock_fetch.return_value = {"id": 1}
    assert service.get(1)["id"] == 1
    mock_fetch.assert_called_once_with(1)
```

Patching `app.client.fetch` only affects code that calls `client.fetch` through the module.""",
    ),
    # -- JavaScript / TypeScript Q&A
    (
        "js_qa",
        """The promise rejection is unhandled because `forEach` does not wait for async callbacks. Use `for...of` or `Promise.all`:

```js
// sequential: one request at a time
for (const id of ids) {
  await saveItem(id);
}

// parallel: all at once, fails fast on the first error
await Promise.all(ids.map((id) => saveItem(id)));
```

If you want to continue when some fail, use `Promise.allSettled` and inspect each result's `status`. Do not wrap each call in a try/catch that ignores the error; at least log it.""",
    ),
    (
        "js_qa",
        """To debounce a search input in React without a library:

```jsx
function Search({ onSearch }) {
  const [q, setQ] = useState("");
  useEffect(() => {
    const t = setTimeout(() => onSearch(q), 300); // wait 300 ms after the last keystroke
    return () => clearTimeout(t);                  // cancel if q changes again
  }, [q, onSearch]);
  return <input value={q} onChange={(e) => setQ(e.target.value)} />;
}
```

Wrap `onSearch` in `useCallback` in the parent, otherwise a new function on every render resets the timer.""",
    ),
    (
        "js_qa",
        """TypeScript complains because `JSON.parse` returns `any` and you assign it to a typed variable without checking. Validate at the boundary:

```ts
import { z } from "zod";

const User = z.object({ id: z.number(), email: z.string().email() });
type User = z.infer<typeof User>;

function parseUser(raw: string): User {
  // throws a descriptive error instead of silently trusting the input
  return User.parse(JSON.parse(raw));
}
```

Avoid `// @ts-ignore` here: it hides the error but the runtime problem remains.""",
    ),
    (
        "js_qa",
        """`this` is undefined in your handler because class methods are not bound automatically. Three fixes:

```js
class Counter {
  count = 0;
  // 1. arrow function property: bound to the instance
  increment = () => { this.count += 1; };
}

// 2. bind in the constructor
this.increment = this.increment.bind(this);

// 3. wrap at the call site
button.addEventListener("click", () => counter.increment());
```

Option 1 is the most common in modern code.""",
    ),
    (
        "js_qa",
        """To override a dependency's nested version with npm 8.3 or later, use `overrides` in package.json:

```json
{
  "overrides": {
    "semver": "7.5.4",
    "some-lib": { "minimist": "1.2.8" }
  }
}
```

The first entry forces one version everywhere; the second only inside `some-lib`. Run `npm install` again and check with `npm ls semver`. Yarn calls this `resolutions` and pnpm `pnpm.overrides`. Remove the override once the upstream package updates, otherwise you keep an old pin forever.""",
    ),
    (
        "js_qa",
        """Antwort: Um in Node.js eine Datei zeilenweise zu lesen, ohne sie komplett in den Speicher zu laden, verwenden Sie das Modul readline:

```js
const fs = require("fs");
const readline = require("readline");

const rl = readline.createInterface({ input: fs.createReadStream("log.txt") });
let errors = 0;
for await (const line of rl) {
  if (line.includes("ERROR")) errors++; // nur Fehlerzeilen zählen
}
console.log(errors);
```

Der Code muss in einer async-Funktion oder in einem ES-Modul laufen.""",
    ),
    (
        "js_qa",
        """Fetch does not reject on HTTP errors, only on network failures. Check `response.ok` yourself:

```js
async function getJson(url) {
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  if (!res.ok) {
    // 404, 500 etc. land here; fetch would otherwise resolve normally
    throw new Error(`HTTP ${res.status} for ${url}`);
  }
  return res.json();
}
```

Add an `AbortController` with a timeout if the server may hang, since fetch has no default timeout.""",
    ),
    # -- SQL
    (
        "sql_qa",
        """To get the latest order per customer, use a window function rather than a correlated subquery:

```sql
SELECT *
FROM (
  SELECT o.*,
         ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY created_at DESC) AS rn
  FROM orders o
) t
WHERE rn = 1;  -- keep only the newest row per customer
```

In PostgreSQL `DISTINCT ON (customer_id) ... ORDER BY customer_id, created_at DESC` is shorter. An index on `(customer_id, created_at DESC)` makes either version fast.""",
    ),
    (
        "sql_qa",
        """Your UPDATE changed every row because the WHERE clause was on its own line after a semicolon in the editor. To protect yourself next time:

```sql
BEGIN;
UPDATE accounts SET status = 'inactive' WHERE last_login < now() - interval '2 years';
-- check the count the database reports before committing
SELECT count(*) FROM accounts WHERE status = 'inactive';
COMMIT;   -- or ROLLBACK if the number looks wrong
```

MySQL clients can use `--safe-updates`, which rejects UPDATE and DELETE without a key in the WHERE clause. To recover now, restore the table from the last backup into another schema and copy the status column back.""",
    ),
    (
        "sql_qa",
        """INSERT ... ON CONFLICT lets you insert or update in one statement (an upsert):

```sql
INSERT INTO settings (user_id, key, value)
VALUES (42, 'theme', 'dark')
ON CONFLICT (user_id, key)
DO UPDATE SET value = EXCLUDED.value,    -- override the existing value
              updated_at = now();
```

Use `DO NOTHING` to ignore duplicates instead. The conflict target must match a unique index or constraint. In MySQL the equivalent is `ON DUPLICATE KEY UPDATE value = VALUES(value)`.""",
    ),
    (
        "sql_qa",
        """The query is slow because `WHERE lower(email) = ?` cannot use the index on `email`. Either create an expression index or store normalised values:

```sql
CREATE INDEX CONCURRENTLY users_email_lower_idx ON users (lower(email));
EXPLAIN ANALYZE SELECT id FROM users WHERE lower(email) = 'ana@example.com';
```

After the index exists, the plan should show an Index Scan instead of a Seq Scan. `CONCURRENTLY` avoids locking the table, but it cannot run inside a transaction block.""",
    ),
    (
        "sql_qa",
        """Réponse : pour compter les commandes par mois en SQL, regroupez sur la date tronquée.

```sql
SELECT date_trunc('month', created_at) AS mois,
       count(*)                         AS commandes,
       sum(total)                       AS chiffre_affaires
FROM commandes
WHERE created_at >= '2024-01-01'
GROUP BY 1
ORDER BY 1;
```

Les mois sans commande n'apparaissent pas ; pour les afficher avec zéro, faites une jointure avec generate_series. Pensez au fuseau horaire si vos dates sont stockées en UTC.""",
    ),
    (
        "sql_qa",
        """To find duplicate e-mail addresses before adding a unique constraint:

```sql
SELECT lower(email) AS email, count(*), array_agg(id ORDER BY id) AS ids
FROM users
GROUP BY lower(email)
HAVING count(*) > 1;
```

Decide which row to keep (usually the oldest id, which has the history), merge references to the others, then delete them. Only then run `ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)`; otherwise it fails on the first duplicate.""",
    ),
    (
        "sql_qa",
        """A recursive CTE walks a hierarchy such as an org chart:

```sql
WITH RECURSIVE chain AS (
  SELECT id, name, manager_id, 1 AS depth
  FROM employees WHERE id = 17            -- start from one employee
  UNION ALL
  SELECT e.id, e.name, e.manager_id, c.depth + 1
  FROM employees e JOIN chain c ON e.id = c.manager_id
)
SELECT * FROM chain ORDER BY depth;
```

Add `WHERE c.depth < 20` in the recursive part as a guard against cycles in bad data.""",
    ),
    # -- git
    (
        "git_qa",
        """To make git ignore a file that is already tracked, adding it to .gitignore is not enough. Remove it from the index but keep it on disk:

```sh
echo "config/local.env" >> .gitignore
git rm --cached config/local.env     # stop tracking, keep the file
git commit -m "Stop tracking local.env"
```

If the file contained secrets, they are still in the history: rotate them. Rewriting history with `git filter-repo` is possible but everyone must re-clone afterwards.""",
    ),
    (
        "git_qa",
        """You can undo the last commit but keep the changes staged with:

```sh
git reset --soft HEAD~1
```

Use `--mixed` (the default) to keep the changes unstaged, and `--hard` to throw them away, which cannot be undone easily (check `git reflog` if you did it by mistake). If the commit was already pushed and others pulled it, do not reset: use `git revert <sha>` so history is not rewritten under them.""",
    ),
    (
        "git_qa",
        """During a rebase, when a conflict appears and you want to keep your version of one file and ignore theirs:

```sh
git checkout --theirs path/to/file   # during a rebase, "theirs" is YOUR commit being replayed
git add path/to/file
git rebase --continue
```

Yes, ours and theirs are swapped in a rebase compared to a merge, which confuses everyone. If the rebase goes badly, `git rebase --abort` restores the branch as it was before you started.""",
    ),
    (
        "git_qa",
        """To override the author of the last commit (for example, you committed with your personal e-mail on a work repository):

```sh
git config user.email "you@company.example"
git commit --amend --reset-author --no-edit
```

For older commits use an interactive rebase and amend each one, or `git rebase -r <base> --exec 'git commit --amend --reset-author --no-edit'`. Force-push only to branches nobody else works on.""",
    ),
    (
        "git_qa",
        """A global gitignore keeps editor and OS files out of every repository without touching each project's .gitignore:

```sh
git config --global core.excludesFile ~/.gitignore_global
cat >> ~/.gitignore_global <<'EOF2'
.DS_Store
.idea/
*.swp
EOF2
```

Project-specific build outputs still belong in the project's .gitignore so that teammates get them too. To check why a file is ignored, run `git check-ignore -v path`. Negation patterns such as `!important.log` re-include a file that an earlier rule excluded.""",
    ),
    (
        "git_qa",
        """Respuesta: para traer un solo commit de otra rama use cherry-pick.

```sh
git switch main
git cherry-pick 4f2a9c1        # aplica ese commit encima de main
# si hay conflictos: resuélvalos, luego
git add .
git cherry-pick --continue
```

Si el commit es una fusión, necesita la opción -m 1 para indicar la rama principal. Evite copiar muchos commits así; en ese caso es mejor fusionar la rama o hacer rebase.""",
    ),
    (
        "git_qa",
        """Git hooks run locally and can be bypassed with `--no-verify`, so treat them as a convenience, not enforcement. A simple pre-commit hook that blocks commits containing private keys:

```sh
#!/bin/sh
# .git/hooks/pre-commit
if git diff --cached | grep -q "BEGIN RSA PRIVATE KEY"; then
  echo "Refusing to commit a private key." >&2
  exit 1
fi
```

Make it executable with `chmod +x`. Enforce the same check in CI, where nobody can skip it.""",
    ),
    # -- bash / shell
    (
        "shell_qa",
        """Your script continues after a failed command because bash does not stop on errors by default. Start scripts with:

```bash
#!/usr/bin/env bash
set -euo pipefail   # exit on error, on unset variables, and on failures inside pipes
IFS=$'\\n\\t'

cleanup() { rm -rf "$tmpdir"; }
tmpdir=$(mktemp -d)
trap cleanup EXIT   # runs even when the script fails
```

If one command is allowed to fail, say so explicitly: `grep -q pattern file || true`. That is clearer than turning error checking off for the whole script.""",
    ),
    (
        "shell_qa",
        """To find and delete files older than 30 days in a log directory:

```sh
# list first, so you see what would be removed
find /var/log/myapp -type f -name '*.log' -mtime +30 -print
# then delete
find /var/log/myapp -type f -name '*.log' -mtime +30 -delete
```

Quote the pattern so the shell does not expand it. For a regular cleanup, logrotate is usually the better tool: it compresses, rotates and can run a command to make the service reopen its log file.""",
    ),
    (
        "shell_qa",
        """The variable is empty inside the loop because the pipe runs the `while` loop in a subshell:

```bash
count=0
# wrong: cat file | while read -r line; do count=$((count+1)); done
while read -r line; do
  count=$((count + 1))
done < input.txt      # redirect instead of piping
echo "$count lines"
```

With bash 4.2+ you can also use `shopt -s lastpipe` in scripts. Always use `read -r` so backslashes in the input are not interpreted.""",
    ),
    (
        "shell_qa",
        """To see which process is listening on a port and stop it:

```sh
sudo ss -ltnp 'sport = :8080'     # shows the PID and program name
# or
sudo lsof -iTCP:8080 -sTCP:LISTEN
kill 12345                         # polite SIGTERM first
kill -9 12345                      # only if it ignores SIGTERM
```

If the process is a systemd service it will be restarted; use `systemctl stop name.service` instead. The `sudo` is needed to see processes owned by other users.""",
    ),
    (
        "shell_qa",
        """Antwort: So setzen Sie unter Linux ein vergessenes Passwort eines normalen Benutzers zurück, wenn Sie Administratorrechte haben:

```sh
sudo passwd anna          # neues Passwort für den Benutzer anna setzen
sudo chage -d 0 anna      # beim nächsten Login muss anna es ändern
```

Für das root-Passwort ohne Zugang brauchen Sie physischen Zugriff: im Bootmenü den Kernelparameter init=/bin/bash ergänzen, das Dateisystem mit mount -o remount,rw / beschreibbar machen und dann passwd ausführen.""",
    ),
    (
        "shell_qa",
        """rsync with a trailing slash on the source copies the contents, without it the directory itself:

```sh
rsync -av --delete src/ backup/src/     # mirror, deleting files removed from src
rsync -av --exclude='node_modules' --exclude='*.tmp' project/ /mnt/backup/project/
rsync -avn src/ dest/                    # -n: dry run, shows what would change
```

Always run with `-n` first when using `--delete`, because a wrong path can wipe the destination. Add `-z` for compression over slow networks.""",
    ),
    (
        "shell_qa",
        """To run a command as another user with that user's environment and override the PATH for just that command:

```sh
sudo -u deploy -H env PATH=/opt/app/bin:/usr/bin bash -c 'cd ~/app && ./migrate.sh'
```

`-H` sets HOME to the target user's home. The `sudoers` file decides whether you may do this; edit it only with `visudo`, which checks the syntax before saving, since a broken sudoers file can lock everyone out of administrative access.""",
    ),
    # -- Docker and containers
    (
        "docker_config",
        """A multi-stage Dockerfile keeps build tools out of the final image:

```dockerfile
FROM python:3.12-slim AS build
WORKDIR /src
COPY requirements.txt .
RUN pip wheel --no-cache-dir -r requirements.txt -w /wheels

FROM python:3.12-slim
RUN useradd -r -u 10001 app          # do not run as root
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY app/ /app/
USER app
CMD ["python", "-m", "app"]
```

Add a .dockerignore with .git and local env files so they never enter the build context.""",
    ),
    (
        "docker_config",
        """docker-compose.yml for local development:

```yaml
services:
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: devonly     # local only; real secrets come from the vault
    volumes: [pgdata:/var/lib/postgresql/data]
  api:
    build: .
    env_file: .env                   # overrides defaults from the image
    depends_on: [db]
    ports: ["8000:8000"]
volumes:
  pgdata: {}
```

Put per-developer overrides in docker-compose.override.yml, which compose reads automatically and which is listed in .gitignore. Start everything with `docker compose up -d` and follow the API logs with `docker compose logs -f api`.""",
    ),
    (
        "docker_config",
        """Your container exits immediately because the main process is a shell that runs a background daemon and then ends. Docker stops the container when PID 1 exits. Run the service in the foreground:

```dockerfile
# wrong: CMD service nginx start
CMD ["nginx", "-g", "daemon off;"]
```

Use the exec form (JSON array) so signals reach the process and `docker stop` shuts it down cleanly instead of waiting 10 seconds and killing it. If you need an init for zombie processes, add `--init` to docker run.""",
    ),
    (
        "docker_config",
        """To reduce image size, check what each layer adds:

```sh
docker history --no-trunc myimage:latest
docker run --rm -it wagoodman/dive myimage:latest   # interactive layer explorer
```

Typical wins: combine `apt-get update && apt-get install -y --no-install-recommends ... && rm -rf /var/lib/apt/lists/*` in one RUN, use slim or distroless bases, and copy only the build output. Deleting files in a later layer does not shrink the image, because earlier layers still contain them.""",
    ),
    (
        "docker_config",
        """Respuesta: para pasar secretos a un contenedor sin dejarlos en la imagen, no use ENV ni ARG en el Dockerfile.

```sh
# en tiempo de ejecución
docker run --env-file ./prod.env miimagen
# durante la construcción (BuildKit)
docker build --secret id=npmrc,src=$HOME/.npmrc .
```

En el Dockerfile: RUN --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci. El secreto está disponible solo durante ese paso y no queda en ninguna capa.""",
    ),
    (
        "docker_config",
        """Kubernetes Deployment snippet with resource limits and probes:

```yaml
containers:
  - name: api
    image: registry.example.com/api:1.8.2
    resources:
      requests: {cpu: 250m, memory: 256Mi}
      limits: {memory: 512Mi}      # no CPU limit: avoids throttling
    readinessProbe:
      httpGet: {path: /readyz, port: 8000}
      periodSeconds: 5
    livenessProbe:
      httpGet: {path: /healthz, port: 8000}
      initialDelaySeconds: 20
    securityContext: {runAsNonRoot: true, readOnlyRootFilesystem: true}
```

Keep liveness simple; a liveness probe that checks the database restarts healthy pods during a database outage.""",
    ),
    (
        "docker_config",
        """If `docker build` ignores your changes, the layer cache is reusing an old step. Order the Dockerfile from least to most frequently changed, so dependency installation stays cached and only the code copy is redone:

```dockerfile
COPY package.json package-lock.json ./
RUN npm ci
COPY . .          # changes here do not invalidate npm ci
```

To force a full rebuild, `docker build --no-cache .`. To bust the cache from one step on, change a build argument used in that step.""",
    ),
    # -- web server / proxy config
    (
        "web_config",
        """nginx reverse proxy for an app on port 8000, with the headers the app needs to build correct URLs:

```nginx
server {
    listen 443 ssl;
    server_name app.example.com;
    location / {
        proxy_pass http://127.0.0.1:8000;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_read_timeout 60s;   # raise for long requests
    }
}
```

Configure the app to trust X-Forwarded-* only from the proxy's address, otherwise clients can override their IP.""",
    ),
    (
        "web_config",
        """To redirect all HTTP traffic to HTTPS and add HSTS in Apache:

```apache
<VirtualHost *:80>
    ServerName example.com
    Redirect permanent / https://example.com/
</VirtualHost>

<VirtualHost *:443>
    ServerName example.com
    Header always set Strict-Transport-Security "max-age=31536000; includeSubDomains"
    # ... SSL configuration ...
</VirtualHost>
```

Start with a short max-age (e.g. 300) while testing, because browsers remember HSTS and you cannot easily undo it for visitors.""",
    ),
    (
        "web_config",
        """The 413 error means the request body exceeds the proxy's limit. In nginx, raise it where uploads happen only:

```nginx
http {
    client_max_body_size 1m;        # default for everything
    server {
        location /api/uploads {
            client_max_body_size 50m;  # overrides the default for this path
            proxy_request_buffering off;
        }
    }
}
```

Reload with `nginx -t && systemctl reload nginx`. Your application server may have its own limit too, which you need to raise separately.""",
    ),
    (
        "web_config",
        """Caddyfile equivalent of your nginx config:

```
app.example.com {
    encode gzip zstd
    reverse_proxy localhost:8000
    header {
        X-Content-Type-Options nosniff
        Referrer-Policy strict-origin-when-cross-origin
        -Server                      # remove the Server header
    }
    log {
        output file /var/log/caddy/app.log
    }
}
```

Caddy obtains and renews certificates automatically, so there is no ssl_certificate line. It also redirects HTTP to HTTPS by default. Validate the file with `caddy validate --config Caddyfile` before reloading the service.""",
    ),
    (
        "web_config",
        """Réponse : pour autoriser les requêtes d'un autre domaine (CORS) dans nginx, ajoutez les en-têtes uniquement pour l'origine attendue.

```nginx
location /api/ {
    if ($http_origin = "https://app.exemple.fr") {
        add_header Access-Control-Allow-Origin $http_origin always;
        add_header Access-Control-Allow-Credentials true always;
    }
    if ($request_method = OPTIONS) { return 204; }
    proxy_pass http://backend;
}
```

N'utilisez pas « * » avec des cookies : les navigateurs refusent cette combinaison.""",
    ),
    (
        "web_config",
        """Rate limiting in nginx per client address:

```nginx
limit_req_zone $binary_remote_addr zone=login:10m rate=5r/m;

server {
    location = /login {
        limit_req zone=login burst=5 nodelay;
        limit_req_status 429;
        proxy_pass http://app;
    }
}
```

`burst` allows short spikes; `nodelay` serves them immediately instead of queuing. Behind a load balancer, set `real_ip_header X-Forwarded-For` and `set_real_ip_from` for the balancer's range, otherwise every client shares the balancer's address.""",
    ),
    (
        "web_config",
        """HAProxy health checks and draining a server for maintenance:

```
backend app
    option httpchk GET /healthz
    http-check expect status 200
    server app1 10.0.0.11:8000 check inter 2s fall 3 rise 2
    server app2 10.0.0.12:8000 check inter 2s fall 3 rise 2
```

To drain app1 without dropping connections: `echo "set server app/app1 state drain" | socat stdio /run/haproxy.sock`. New requests go to app2 while existing sessions finish. Set it back to `ready` after the maintenance.""",
    ),
    # -- CI configuration
    (
        "ci_config",
        """GitHub Actions workflow that runs tests on pull requests and caches pip downloads:

```yaml
name: tests
on: [pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {python-version: "3.12", cache: pip}
      - run: pip install -r requirements-dev.txt
      - run: pytest -q
```

Pull requests from forks get a read-only token and no secrets, which is what you want. Pin third-party actions to a commit SHA rather than a tag.""",
    ),
    (
        "ci_config",
        """To skip a job when only documentation changed, use path filters instead of a commit-message convention:

```yaml
on:
  pull_request:
    paths-ignore:
      - "docs/**"
      - "**/*.md"
```

Be careful with required status checks: a skipped workflow never reports, so branch protection waits forever. The usual workaround is a small job that always runs and depends on the real ones, and you mark that job as required instead.""",
    ),
    (
        "ci_config",
        """GitLab CI: run the deploy job only on tags and require a manual click:

```yaml
deploy:
  stage: deploy
  script:
    - ./scripts/deploy.sh "$CI_COMMIT_TAG"
  rules:
    - if: $CI_COMMIT_TAG        # only for tags
      when: manual              # someone has to press play
  environment: production
  resource_group: production    # never two deploys at once
```

Protect the tags and the production environment so only maintainers can trigger it. Variables marked protected are only exposed on protected refs.""",
    ),
    (
        "ci_config",
        """The matrix build retries a flaky test forever because `continue-on-error` hides the failure. Make flaky tests visible instead of ignoring them:

```yaml
strategy:
  fail-fast: false
  matrix:
    python: ["3.10", "3.11", "3.12"]
steps:
  - run: pytest -q -p no:randomly --reruns 2 --reruns-delay 1
```

`pytest-rerunfailures` retries failed tests and reports them as rerun, so you can track which tests are flaky. Quarantine persistent ones with a marker and an issue link.""",
    ),
    (
        "ci_config",
        """Antwort: In Jenkins legen Sie Zugangsdaten nicht im Jenkinsfile ab, sondern im Credentials-Speicher, und binden sie nur im benötigten Schritt ein:

```groovy
pipeline {
  agent any
  stages {
    stage('Deploy') {
      steps {
        withCredentials([string(credentialsId: 'deploy-token', variable: 'TOKEN')]) {
          sh './deploy.sh'   // TOKEN ist nur hier gesetzt und wird im Log maskiert
        }
      }
    }
  }
}
```

Vermeiden Sie echo mit dem Token, auch beim Debuggen.""",
    ),
    (
        "ci_config",
        """pre-commit configuration for a Python project:

```yaml
repos:
  - repo: https://github.com/astral-sh/ruff-pre-commit
    rev: v0.4.4
    hooks:
      - id: ruff
        args: [--fix]
      - id: ruff-format
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v4.6.0
    hooks:
      - id: check-added-large-files
      - id: detect-private-key
```

Run `pre-commit install` once per clone. In CI, run `pre-commit run --all-files` so nobody can skip the hooks with `--no-verify`. The first run downloads the hook environments, which takes a minute; later runs only check the staged files.""",
    ),
    (
        "ci_config",
        """Dependabot configuration grouping minor updates so you get one pull request per week instead of twenty:

```yaml
version: 2
updates:
  - package-ecosystem: pip
    directory: "/"
    schedule: {interval: weekly}
    groups:
      minor-and-patch:
        update-types: [minor, patch]
    ignore:
      - dependency-name: "django"
        update-types: ["version-update:semver-major"]   # majors need a migration plan
```

Security updates are still opened separately and immediately, whatever the schedule says. Review the grouped pull request like any other change and read the release notes of the packages it touches.""",
    ),
    # -- Rust / Go
    (
        "rust_go_qa",
        """The borrow checker rejects your loop because you hold a reference into the vector while pushing to it. Collect first, then push:

```rust
let mut items = vec![1, 2, 3];
// error: cannot borrow `items` as mutable because it is also borrowed as immutable
// for x in &items { items.push(x * 2); }
let doubled: Vec<i32> = items.iter().map(|x| x * 2).collect();
items.extend(doubled);
```

Pushing may reallocate the vector, which would leave the reference dangling; that is exactly what the compiler prevents.""",
    ),
    (
        "rust_go_qa",
        """In Go, handle the error on every call; do not ignore it with the blank identifier unless you really mean it:

```go
f, err := os.Open(path)
if err != nil {
    return fmt.Errorf("open config %s: %w", path, err) // wrap with context
}
defer f.Close()

var cfg Config
if err := json.NewDecoder(f).Decode(&cfg); err != nil {
    return fmt.Errorf("decode config: %w", err)
}
```

With `%w`, callers can still check the cause with `errors.Is(err, fs.ErrNotExist)`.""",
    ),
    (
        "rust_go_qa",
        """To cancel a slow HTTP request in Go after a timeout, pass a context:

```go
ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
defer cancel()

req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
resp, err := http.DefaultClient.Do(req)
if err != nil {
    return err // includes context.DeadlineExceeded on timeout
}
defer resp.Body.Close()
```

The default client has no timeout at all, so a hanging server blocks your goroutine forever. Set `Timeout` on a custom client too.""",
    ),
    (
        "rust_go_qa",
        """You get "the trait bound is not satisfied" because `?` needs a conversion from the library's error into yours. Implement `From` or use a crate that does it:

```rust
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("parse: {0}")]
    Parse(#[from] serde_json::Error),
}

fn load(path: &str) -> Result<Config, AppError> {
    let text = std::fs::read_to_string(path)?; // io::Error -> AppError
    Ok(serde_json::from_str(&text)?)
}
```""",
    ),
    (
        "rust_go_qa",
        """A Go worker pool with a fixed number of goroutines:

```go
jobs := make(chan Job)
var wg sync.WaitGroup
for i := 0; i < 4; i++ {           // four workers
    wg.Add(1)
    go func() {
        defer wg.Done()
        for j := range jobs {       // exits when jobs is closed
            process(j)
        }
    }()
}
for _, j := range all { jobs <- j }
close(jobs)
wg.Wait()
```

Use `errgroup.Group` with `SetLimit` if workers can fail and you want the first error.""",
    ),
    (
        "rust_go_qa",
        """Réponse : en Rust, pour ignorer volontairement une valeur de retour marquée #[must_use], écrivez let _ = ... ; le compilateur cesse alors de vous avertir.

```rust
// on ignore le résultat, l'échec de l'envoi n'est pas grave ici
let _ = tx.send(Message::Tick);
```

Faites-le seulement si l'erreur est réellement sans conséquence, et laissez un commentaire qui explique pourquoi. Pour un Result qui compte, utilisez ? ou traitez l'erreur explicitement.""",
    ),
    (
        "rust_go_qa",
        """Cargo features let users turn optional dependencies on and off:

```toml
[features]
default = ["json"]
json = ["dep:serde_json"]
tls = ["reqwest/rustls-tls"]

[dependencies]
serde_json = { version = "1", optional = true }
reqwest = { version = "0.12", default-features = false }
```

Users can override the defaults with `default-features = false, features = ["tls"]`. Keep features additive: enabling a feature should never remove functionality, because Cargo unifies features across the dependency graph.""",
    ),
    # -- CSS / HTML
    (
        "css_html",
        """Your style is ignored because a more specific selector wins. Check the computed styles panel in the browser's developer tools to see which rule overrides yours. Options, from best to worst:

```css
/* 1. match the specificity of the existing rule */
.card .title { color: #222; }

/* 2. use a cascade layer for third-party CSS so your rules win */
@layer vendor, app;

/* 3. last resort */
.title { color: #222 !important; }
```

Avoid `!important` in component libraries, since users then cannot override your styles.""",
    ),
    (
        "css_html",
        """Centering an element horizontally and vertically with flexbox:

```css
.container {
  display: flex;
  justify-content: center;   /* horizontal */
  align-items: center;       /* vertical */
  min-height: 100vh;
}
```

With grid it is even shorter: `display: grid; place-items: center;`. If the element must sit above other content, use `position: fixed; inset: 0; margin: auto;` with a defined width and height. Older layouts used absolute positioning with a negative translate, which still works but is harder to read.""",
    ),
    (
        "css_html",
        """To make a form accessible, every input needs a label that screen readers can associate with it:

```html
<label for="email">E-mail address</label>
<input id="email" name="email" type="email" autocomplete="email" required>

<!-- for an icon-only button, give it an accessible name -->
<button type="submit" aria-label="Search">
  <svg aria-hidden="true">...</svg>
</button>
```

Placeholders are not labels: they disappear when the user types and often have poor contrast.""",
    ),
    (
        "css_html",
        """Dark mode that follows the system setting but lets the user override it:

```css
:root { --bg: #fff; --fg: #111; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #111; --fg: #eee; }
}
:root[data-theme="light"] { --bg: #fff; --fg: #111; }  /* user choice wins */
:root[data-theme="dark"]  { --bg: #111; --fg: #eee; }
body { background: var(--bg); color: var(--fg); }
```

Store the choice in localStorage and set the attribute in a small inline script in the head to avoid a flash of the wrong theme.""",
    ),
    (
        "css_html",
        """Respuesta: para que una imagen se adapte al ancho del contenedor sin deformarse:

```css
img {
  max-width: 100%;
  height: auto;        /* mantiene la proporción */
}
.portada {
  width: 100%;
  aspect-ratio: 16 / 9;
  object-fit: cover;   /* recorta en lugar de estirar */
}
```

Añada los atributos width y height en la etiqueta img: el navegador reserva el espacio antes de cargar la imagen y la página no salta.""",
    ),
    (
        "css_html",
        """A sticky table header that stays visible while scrolling:

```css
.table-wrap { max-height: 400px; overflow: auto; }
thead th {
  position: sticky;
  top: 0;
  background: white;   /* otherwise rows show through */
  z-index: 1;
}
```

Sticky does not work if any ancestor between the header and the scroll container has `overflow: hidden`. That is the most common reason it seems to be ignored.""",
    ),
    (
        "css_html",
        """To prevent the browser from autofilling a field (for example a one-time code field that should not get a saved password):

```html
<input name="otp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}">
<input name="new-password" type="password" autocomplete="new-password">
```

Browsers often ignore `autocomplete="off"` on login forms on purpose, because password managers improve security. Use the specific tokens instead: they tell the browser what the field is, and mobile keyboards can offer the code from an SMS.""",
    ),
    # -- regex
    (
        "regex_qa",
        """To match an e-mail address loosely enough for form validation:

```python
import re
EMAIL = re.compile(r"^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$")
EMAIL.match("ana@example.com")   # match
EMAIL.match("ana@localhost")     # None: no dot in the domain
```

Do not try to implement the full RFC in a regex. The only real validation is sending a confirmation e-mail. The pattern above just catches typos such as a missing @. Normalise the address to lower case before storing it, so duplicates are easier to detect later.""",
    ),
    (
        "regex_qa",
        """Your regex is slow because of nested quantifiers such as `(a+)+$`, which backtrack exponentially on inputs that almost match. Rewrite without nesting, or use possessive quantifiers / atomic groups where your engine supports them:

```python
# catastrophic on "aaaaaaaaaaaaaaaaaaaaaaaa!"
bad = re.compile(r"^(a+)+$")
good = re.compile(r"^a+$")
```

For untrusted input, use an engine with linear-time guarantees (RE2, Rust's regex crate) or set a timeout; otherwise a crafted string can hang your service.""",
    ),
    (
        "regex_qa",
        """To replace only whole words, use word boundaries, and ignore case with a flag:

```python
import re
text = "Cat, concatenate, CAT."
re.sub(r"\\bcat\\b", "dog", text, flags=re.IGNORECASE)
# 'dog, concatenate, dog.'
```

`\\b` is a boundary between a word character and a non-word character, so "concatenate" is untouched. For non-ASCII words, Python's `re` treats Unicode letters as word characters by default in str patterns.""",
    ),
    (
        "regex_qa",
        """Extracting key=value pairs from a log line with named groups:

```js
const line = 'level=warn user="ana lopez" took=120ms';
const re = /(?<key>\\w+)=(?:"(?<q>[^"]*)"|(?<v>\\S+))/g;
const out = {};
for (const m of line.matchAll(re)) {
  out[m.groups.key] = m.groups.q ?? m.groups.v;   // quoted or bare value
}
// { level: 'warn', user: 'ana lopez', took: '120ms' }
```

If the format allows escaped quotes inside values, switch to a real parser.""",
    ),
    (
        "regex_qa",
        """Antwort: Mit grep finden Sie Zeilen, die ein Muster enthalten, aber ein anderes nicht:

```sh
grep -E 'ERROR|FATAL' app.log | grep -v 'healthcheck'
# Groß-/Kleinschreibung ignorieren
grep -i 'timeout' app.log
# nur die Anzahl der Treffer
grep -c 'ERROR' app.log
```

Für rekursive Suche in Quelltexten ist ripgrep (rg) schneller und beachtet .gitignore automatisch. Mit der Option -n zeigt grep zusätzlich die Zeilennummern der Treffer an.""",
    ),
    (
        "regex_qa",
        """To split a string on commas that are not inside quotes, a regex works for simple cases:

```python
import re
row = 'a,"b,c",d'
re.split(r',(?=(?:[^"]*"[^"]*")*[^"]*$)', row)
# ['a', '"b,c"', 'd']
```

But for real CSV use the csv module, which handles escaped quotes and newlines inside fields:

```python
import csv, io
next(csv.reader(io.StringIO(row)))   # ['a', 'b,c', 'd']
``` The csv module also writes correctly quoted output with csv.writer, which is the safer way to produce files for spreadsheets.""",
    ),
    (
        "regex_qa",
        """A lookahead lets you require several conditions in one pattern, for example a password policy check:

```python
import re
POLICY = re.compile(r"^(?=.*[a-z])(?=.*[A-Z])(?=.*\\d).{12,}$")
bool(POLICY.match("correct Horse 7 battery"))  # True
```

Each `(?=...)` checks a condition without consuming characters. Consider whether you need composition rules at all: current guidance prefers length and a check against breached passwords over required character classes. Test the pattern with a few examples in a unit test so that later edits do not silently weaken it.""",
    ),
    # -- Java / C#
    (
        "jvm_dotnet_qa",
        """In Spring Boot, you can override a property per environment with profiles:

```yaml
# application.yml
server:
  port: 8080
app:
  cache-ttl: 300
---
spring:
  config:
    activate:
      on-profile: prod
app:
  cache-ttl: 3600   # overrides the default in prod
```

Start with `--spring.profiles.active=prod`. Environment variables override both: `APP_CACHETTL=600`. Check the effective value at `/actuator/env` in non-production environments only. Keep secrets out of application.yml altogether and inject them as environment variables.""",
    ),
    (
        "jvm_dotnet_qa",
        """The `NullPointerException` comes from unboxing: `map.get(key)` returns null for a missing key, and assigning it to an `int` unboxes null.

```java
Map<String, Integer> counts = new HashMap<>();
// int n = counts.get("x");                 // NPE when "x" is missing
int n = counts.getOrDefault("x", 0);       // safe
counts.merge("x", 1, Integer::sum);         // increment, inserting 1 if absent
```

Static analysis (Error Prone, SpotBugs) catches many of these; enable it in the build instead of suppressing the warnings.""",
    ),
    (
        "jvm_dotnet_qa",
        """In C#, `async void` methods swallow exceptions into the synchronization context, which can crash the process. Return `Task` instead:

```csharp
// avoid: async void SaveAsync()
public async Task SaveAsync(Order order, CancellationToken ct)
{
    await using var tx = await _db.Database.BeginTransactionAsync(ct);
    _db.Orders.Add(order);
    await _db.SaveChangesAsync(ct);
    await tx.CommitAsync(ct);   // rolled back automatically if an exception skips this
}
```

The only place `async void` belongs is an event handler.""",
    ),
    (
        "jvm_dotnet_qa",
        """To read configuration in ASP.NET Core with environment overrides:

```csharp
var builder = WebApplication.CreateBuilder(args);
// appsettings.json, then appsettings.{Environment}.json, then env vars, then command line
builder.Services.Configure<SmtpOptions>(builder.Configuration.GetSection("Smtp"));
```

An environment variable `Smtp__Host=mail.internal` overrides `Smtp:Host` from the JSON files (double underscore for the section separator). Keep passwords in user secrets locally and in the platform's secret store in production. Bind options to a class and validate them at start-up with ValidateOnStart, so a missing value fails fast.""",
    ),
    (
        "jvm_dotnet_qa",
        """Respuesta: en Java, para leer un archivo de texto completo de forma sencilla:

```java
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.charset.StandardCharsets;

// lee todo el archivo; para archivos grandes use Files.lines con try-with-resources
String contenido = Files.readString(Path.of("datos.txt"), StandardCharsets.UTF_8);
```

Indique siempre la codificación: sin ella se usa la del sistema, que cambia entre servidores y puede romper los acentos. Para escribir, el método equivalente es Files.writeString, que también acepta la codificación como parámetro.""",
    ),
    (
        "jvm_dotnet_qa",
        """Gradle: to exclude a transitive dependency that conflicts with yours and force a version:

```kotlin
dependencies {
    implementation("com.example:client:2.3.0") {
        exclude(group = "commons-logging", module = "commons-logging")
    }
    constraints {
        implementation("com.fasterxml.jackson.core:jackson-databind:2.17.1") {
            because("older versions have known vulnerabilities")
        }
    }
}
```

Run `./gradlew dependencyInsight --dependency jackson-databind` to see which path brought in each version. Keep such exclusions commented in the build file, so the next person knows why they are there.""",
    ),
    (
        "jvm_dotnet_qa",
        """To run code on a schedule in Spring, enable scheduling and annotate a method:

```java
@Configuration
@EnableScheduling
class Jobs {
    // every day at 02:30 server time; override the cron in application.yml
    @Scheduled(cron = "${jobs.cleanup.cron:0 30 2 * * *}")
    void cleanup() {
        repository.deleteExpired(Instant.now());
    }
}
```

With several instances, every instance runs the job. Use ShedLock or a database lock so only one of them does.""",
    ),
]
