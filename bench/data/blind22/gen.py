#!/usr/bin/env python3
"""Blind generator for reasoning-trace credential eval set (blind22).
Fixed seed. All credential values are random and fake."""
import base64, hashlib, json, os, random, re, string, sys, uuid

SEED = 22022
rng = random.Random(SEED)
OUT = "/work/blind22"

ALNUM = string.ascii_letters + string.digits
UPALNUM = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = string.ascii_letters + string.digits + "+/"
B64URL = string.ascii_letters + string.digits + "-_"

def rs(chars, n):
    return "".join(rng.choice(chars) for _ in range(n))

def pick(xs):
    return rng.choice(xs)

def uid():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))

def sha40():
    return rs(HEX, 40)

def b64blob(nbytes):
    return base64.b64encode(bytes(rng.getrandbits(8) for _ in range(nbytes))).decode()

NAMES = ["Priya", "Marcus", "Elena", "Tomás", "Aiko", "Jordan", "Fatima", "Lukas", "Grace", "Dmitri", "Noor", "Sam"]
PROJECTS = ["billing-service", "inventory-api", "mobile-backend", "analytics-etl", "checkout", "notif-worker", "crm-sync", "search-indexer"]

OPEN_TO = ["Okay, the user wants {g}.", "Alright, so the user is asking me {g}.", "So the task here is {g}.",
           "Okay, let's see. They want me {g}.", "Let me think step by step. The user needs me {g}."]
OPEN_WH = ["Okay, the user is asking {g}.", "Alright, the question is {g}.", "Hmm, they want to know {g}.",
           "Let me think about {g}.", "So the user wants to understand {g}."]
OPEN_NP = ["Okay, the user wants {g}.", "Alright, the user is asking for {g}.", "So the request is for {g}.",
           "Okay, they're looking for {g}.", "Hmm, the user wants {g}. Let me work through it."]
CLOSE = [
    "I think that's it. Let me write the answer clearly.", "Okay, that seems right. I'll present it step by step.",
    "Let me double-check once more... yes, that holds. Time to answer.", "Good, I'll summarize this for the user.",
    "That should cover it. I'll format the final answer now.", "Alright, I'm fairly confident. Writing the response.",
    "I'll keep the explanation concise but show the key steps.", "",
]
WAIT = ["Wait, ", "Hmm, wait, ", "Actually, hold on — ", "Hmm, ", "Wait a second, ", "Let me re-check: ", "Oh, also, "]

def opener(goal):
    w = goal.split()[0]
    if w == "to":
        pool = OPEN_TO
    elif w in ("how", "why", "whether", "what", "when", "where", "which"):
        pool = OPEN_WH
    elif w == "me":
        pool = ["Okay, the user wants {g}.", "Alright, the user is asking {g}.", "So they'd like {g}."]
    else:
        pool = OPEN_NP
    return pick(pool).format(g=goal)

def wrap(goal, body):
    t = opener(goal) + " " + body
    c = pick(CLOSE)
    if c:
        t += " " + c
    return t

# ---------------------------------------------------------------- benign ---
def math_and_logic():
    k = rng.randrange(8)
    if k == 0:
        a, d, n = rng.randint(1, 20), rng.randint(2, 9), rng.randint(10, 60)
        last = a + (n - 1) * d
        s = n * (a + last) // 2 if (n * (a + last)) % 2 == 0 else n * (a + last) / 2
        return wrap(f"the sum of the arithmetic sequence starting at {a} with common difference {d}, {n} terms",
            f"First, the last term is a + (n-1)d = {a} + {n-1}*{d} = {last}. The sum of an arithmetic series is n(a + l)/2. "
            f"So that's {n} * ({a} + {last}) / 2 = {n} * {a+last} / 2 = {s}. {pick(WAIT)}let me sanity check with small n: for n=2 the sum would be {a} + {a+d} = {2*a+d}, "
            f"and the formula gives 2*({a}+{a+d})/2 = {2*a+d}. Good, consistent. So the answer is {s}.")
    if k == 1:
        t = rng.randint(3, 11)
        ways = sum(1 for i in range(1, 7) for j in range(1, 7) if i + j == t)
        return wrap(f"the probability that two fair dice sum to {t}",
            f"There are 36 equally likely outcomes. I need to count pairs (i, j) with i + j = {t}. "
            f"Let me enumerate: " + ", ".join(f"({i},{t-i})" for i in range(1, 7) if 1 <= t - i <= 6) +
            f". That's {ways} outcomes. So P = {ways}/36" + (f", which simplifies to 1/{36//ways}" if 36 % ways == 0 else "") +
            f". {pick(WAIT)}is the order counted? Yes, (1,{t-1}) and ({t-1},1) are distinct outcomes when dice are distinguishable, so {ways} is right. About {ways/36:.3f}.")
    if k == 2:
        x, y = rng.randint(-9, 9), rng.randint(-9, 9)
        a, b, c, d = rng.randint(1, 7), rng.randint(1, 7), rng.randint(1, 7), rng.randint(-7, -1)
        e, f = a * x + b * y, c * x + d * y
        return wrap("to solve a 2x2 linear system",
            f"The equations are {a}x + {b}y = {e} and {c}x + ({d})y = {f}. Let me use elimination. Multiply the first by {c} and the second by {a}: "
            f"{a*c}x + {b*c}y = {e*c} and {a*c}x + ({a*d})y = {f*a}. Subtract: ({b*c} - ({a*d}))y = {e*c} - ({f*a}), so {b*c-a*d}y = {e*c-f*a}, giving y = {y}. "
            f"Then {a}x = {e} - {b}*{y} = {e-b*y}, so x = {x}. {pick(WAIT)}plug back into the second: {c}*{x} + ({d})*{y} = {c*x+d*y}. Matches {f}. So x = {x}, y = {y}.")
    if k == 3:
        p, r, yrs = rng.choice([1000, 2500, 5000, 12000]), rng.choice([3, 4, 5, 6.5, 7]), rng.randint(3, 15)
        amt = p * (1 + r / 100) ** yrs
        return wrap(f"how much ${p} grows to at {r}% annual interest compounded yearly over {yrs} years",
            f"The formula is A = P(1 + r)^t. Here P = {p}, r = {r/100}, t = {yrs}. So (1.{str(r/100).split('.')[1]})^{yrs}... let me compute roughly. "
            f"1 + r = {1+r/100}. Raising to the {yrs}th power gives about {(1+r/100)**yrs:.4f}. Multiply by {p}: about {amt:.2f}. "
            f"{pick(WAIT)}the user might mean simple interest. Simple interest would be {p} * (1 + {r/100}*{yrs}) = {p*(1+r/100*yrs):.2f}. "
            f"The question says compounded, so I'll go with {amt:.2f} and mention the difference of {amt - p*(1+r/100*yrs):.2f}.")
    if k == 4:
        n1, n2 = rng.sample(NAMES, 2)
        return wrap("a solution to a knights-and-knaves puzzle",
            f"{n1} says '{n2} is a knave.' {n2} says 'We are both knights.' Let me consider cases. Suppose {n2} is a knight. Then both are knights, so {n1} is a knight, "
            f"but then {n1}'s statement '{n2} is a knave' would be true, contradiction. So {n2} is a knave. Then {n2}'s statement is false, which is consistent — "
            f"not both are knights. Now {n1} says {n2} is a knave, which is true, so {n1} must be a knight. {pick(WAIT)}check: {n1} knight, {n2} knave. {n2} says 'both knights' — false, fine for a knave. "
            f"Consistent. So {n1} is a knight and {n2} is a knave.")
    if k == 5:
        a, b = rng.randint(100, 2000), rng.randint(50, 900)
        steps, x, y = [], a, b
        while y:
            steps.append(f"{x} = {x//y}*{y} + {x%y}")
            x, y = y, x % y
        return wrap(f"the greatest common divisor of {a} and {b}",
            "I'll use the Euclidean algorithm. " + "; ".join(steps) + f". The last nonzero remainder is {x}, so gcd({a}, {b}) = {x}. "
            f"{pick(WAIT)}the lcm might also be useful: lcm = {a}*{b}/{x} = {a*b//x}. I'll mention it briefly.")
    if k == 6:
        cs = [rng.randint(-6, 9) for _ in range(4)]
        poly = " + ".join(f"{c}x^{3-i}" for i, c in enumerate(cs[:3])) + f" + {cs[3]}"
        der = f"{3*cs[0]}x^2 + {2*cs[1]}x + {cs[2]}"
        return wrap(f"the derivative of f(x) = {poly} and where it is increasing",
            f"Power rule term by term: d/dx of {cs[0]}x^3 is {3*cs[0]}x^2, of {cs[1]}x^2 is {2*cs[1]}x, of {cs[2]}x is {cs[2]}, and the constant goes to 0. "
            f"So f'(x) = {der}. For increasing intervals I need f'(x) > 0. The discriminant is ({2*cs[1]})^2 - 4*{3*cs[0]}*{cs[2]} = {(2*cs[1])**2 - 12*cs[0]*cs[2]}. "
            f"{pick(WAIT)}if the leading coefficient is {'positive' if cs[0] > 0 else 'non-positive'}, the sign analysis changes, so let me be careful about which side of the roots is positive.")
    v1, v2, dist = rng.randint(40, 90), rng.randint(40, 90), rng.randint(150, 600)
    return wrap("when two trains traveling toward each other meet",
        f"Train A goes {v1} km/h, train B goes {v2} km/h, and they start {dist} km apart. Closing speed is {v1}+{v2} = {v1+v2} km/h. "
        f"Time to meet is {dist}/{v1+v2} = {dist/(v1+v2):.3f} hours, which is about {int(dist/(v1+v2))} h {round((dist/(v1+v2)%1)*60)} min. "
        f"{pick(WAIT)}where do they meet? Train A covers {v1}*{dist/(v1+v2):.3f} = {v1*dist/(v1+v2):.1f} km from its start. That plus B's {v2*dist/(v1+v2):.1f} km equals {dist}. Good.")


def coding_debug():
    k = rng.randrange(9)
    proj = pick(PROJECTS)
    if k == 0:
        key = pick(["user_id", "email", "created_at", "status", "sku"])
        ln = rng.randint(20, 300)
        return wrap("help with a KeyError in their Python script",
            f"They pasted this traceback:\n\nTraceback (most recent call last):\n  File \"/app/{proj.replace('-', '_')}/handlers.py\", line {ln}, in process\n    value = record[\"{key}\"]\nKeyError: '{key}'\n\n"
            f"So some records don't have the '{key}' field. The fix is either record.get(\"{key}\") with a default, or filtering upstream. "
            f"{pick(WAIT)}they said it only fails on the last batch — that suggests the API returned a partial record or an error object like {{\"error\": \"rate_limited\"}}. "
            f"I should suggest logging the raw record before indexing, and checking the response status first.")
    if k == 1:
        tbl = pick(["orders", "events", "invoices", "sessions"])
        return wrap("to fix a SQL error",
            f"Their query is:\n\nSELECT customer_id, region, SUM(amount) AS total\nFROM {tbl}\nWHERE created_at >= '2024-0{rng.randint(1,9)}-01'\nGROUP BY customer_id;\n\n"
            f"Postgres complains: column \"{tbl}.region\" must appear in the GROUP BY clause or be used in an aggregate function. Right, region is selected but not grouped. "
            f"Options: add region to GROUP BY, or wrap it in MAX(region) if it's functionally dependent on customer_id. {pick(WAIT)}if customer_id is the primary key of a joined customers table, "
            f"Postgres would allow it, but here it's grouping on {tbl}, so no. I'll recommend GROUP BY customer_id, region.")
    if k == 2:
        fn = pick(["map", "forEach", "filter", "then"])
        return wrap("to debug a JavaScript TypeError",
            f"The error: TypeError: data.items.{fn} is not a function at fetchItems (app.js:{rng.randint(10,99)}:{rng.randint(5,40)}). "
            f"So data.items isn't an array (or promise for .then). Probably the API returns {{ items: {{ ... }} }} as an object keyed by id, or null when empty. "
            f"Let me think — they do `const data = await res.json()` and then data.items.{fn}(...). {pick(WAIT)}if res.ok is false, the body might be {{\"message\": \"Not Found\"}} and items is undefined; "
            f"that gives 'Cannot read properties of undefined' instead, so it's not that. So items exists but is an object. Object.values(data.items) would fix it.")
    if k == 3:
        n = rng.randint(5, 20)
        return wrap("to find an off-by-one bug",
            f"Their code:\n\nfor i in range(1, len(arr)):\n    if arr[i] > arr[i+1]:\n        swaps += 1\n\nWith len(arr) = {n}, i goes up to {n-1}, and arr[i+1] is arr[{n}], which raises IndexError: list index out of range. "
            f"Also starting at 1 skips comparing arr[0] with arr[1]. The right loop is range(len(arr) - 1). {pick(WAIT)}maybe they intentionally skip index 0 as a header row? "
            f"They said arr is plain numbers, so no. I'll show the corrected version and maybe suggest zip(arr, arr[1:]).")
    if k == 4:
        return wrap("to understand a Rust borrow checker error",
            "The error is E0502: cannot borrow `v` as mutable because it is also borrowed as immutable. Code: let first = &v[0]; v.push(4); println!(\"{}\", first);. "
            "The immutable reference `first` is still alive when push needs &mut v, and push may reallocate, invalidating `first`. "
            f"{pick(WAIT)}with NLL, if `first` weren't used after push it would compile. So the fix is either clone the value (let first = v[0];) since it's Copy, or move the println before the push.")
    if k == 5:
        cls = pick(["OrderService", "UserRepository", "PaymentController", "ReportJob"])
        return wrap("to fix a NullPointerException in Java",
            f"Stack trace:\n\njava.lang.NullPointerException: Cannot invoke \"String.trim()\" because \"name\" is null\n    at com.acme.{cls}.normalize({cls}.java:{rng.randint(30,250)})\n    at com.acme.{cls}.save({cls}.java:{rng.randint(30,250)})\n\n"
            f"So `name` is null coming from the request DTO. Probably the JSON field is 'fullName' while the DTO expects 'name', so Jackson leaves it null. "
            f"{pick(WAIT)}could also be a missing @JsonProperty. I'll suggest validating with @NotNull and checking the field mapping.")
    if k == 6:
        return wrap("to explain why their function keeps accumulating values between calls",
            "They have def add_item(item, bucket=[]): bucket.append(item); return bucket. Calling add_item('a') then add_item('b') returns ['a', 'b']. "
            "Classic mutable default argument: the default list is created once at definition time. Fix: bucket=None, then if bucket is None: bucket = []. "
            f"{pick(WAIT)}they also use a dict default in another function, cache={{}}. Same problem, although maybe there it's intentional memoization. I'll point out both.")
    if k == 7:
        return wrap("to fix a Go panic",
            f"panic: assignment to entry in nil map\n\ngoroutine 1 [running]:\nmain.(*Registry).Add(...)\n\t/src/{proj}/registry.go:{rng.randint(10,90)}\n\n"
            "So the struct has `entries map[string]int` but it's never initialized. They create it with &Registry{} and call Add. Need make(map[string]int) in a constructor. "
            f"{pick(WAIT)}if Add is called concurrently they'd also need a sync.Mutex; the stack shows only goroutine 1, so not now, but worth mentioning.")
    return wrap("help with a failing unit test",
        f"The pytest output says:\n\nFAILED tests/test_{proj.replace('-', '_')}.py::test_totals - AssertionError: assert 0.30000000000000004 == 0.3\n\n"
        "That's floating point: 0.1 + 0.2 isn't exactly 0.3. Use pytest.approx(0.3) or Decimal for money values. "
        f"{pick(WAIT)}since this is {proj}, they probably handle currency, so Decimal or integer cents is the better long-term fix, not approx.")


def security_discussion():
    k = rng.randrange(10)
    if k == 0:
        return wrap("how to keep their OpenAI API key out of their source code",
            "The usual approach: put it in an environment variable, e.g. export OPENAI_API_KEY=\"sk-...\" in the shell, or in a .env file loaded with python-dotenv, and read it with os.environ[\"OPENAI_API_KEY\"]. "
            "Add .env to .gitignore. I shouldn't write any real-looking key in the example — just YOUR_API_KEY or sk-... as a placeholder. "
            f"{pick(WAIT)}they're deploying to {pick(['Vercel', 'Heroku', 'Fly.io', 'Render'])}, so I should mention setting it in the platform's environment settings rather than committing the .env.")
    if k == 1:
        return wrap("an explanation of how JWTs work",
            "A JWT has three base64url parts: header.payload.signature. The header for HS256 is {\"alg\":\"HS256\",\"typ\":\"JWT\"}, which encodes to eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9. "
            "The payload has claims like sub, iat, exp. The signature is HMAC-SHA256 over the first two parts using a server secret. "
            f"{pick(WAIT)}I should stress the payload is only encoded, not encrypted — anyone can decode it. And never accept alg: none. For the example I'll write the token as <header>.<payload>.<signature> rather than a full token.")
    if k == 2:
        prov = pick(["Google", "GitHub", "Okta", "Auth0"])
        return wrap(f"to understand the OAuth 2.0 authorization code flow with {prov}",
            "Step one: redirect the user to the authorize endpoint with client_id=YOUR_CLIENT_ID, redirect_uri, scope, state, and ideally a PKCE code_challenge. "
            "Step two: the provider redirects back with ?code=<auth_code>&state=... . Step three: the backend POSTs the code plus client_secret=<client_secret> to the token endpoint and gets an access_token and refresh_token. "
            f"{pick(WAIT)}for a SPA they shouldn't use a client secret at all — it can't be kept secret in the browser — so PKCE without a secret is the right recommendation.")
    if k == 3:
        return wrap("whether to use bcrypt or Argon2 for storing passwords",
            "Both are fine; Argon2id is the current OWASP recommendation, with memory cost around 19 MiB, iterations 2, parallelism 1. bcrypt has the 72-byte input limit and cost factor, 12 is common. "
            "Never store plaintext or use fast hashes like MD5/SHA-1 for passwords. Salt is handled automatically by both libraries. "
            f"{pick(WAIT)}they mentioned they currently store SHA-256(password). Migration path: rehash on next login, or wrap the existing hash: argon2(sha256(password)) and flag it.")
    if k == 4:
        return wrap("what to do after accidentally committing AWS credentials to a public repo",
            "First priority: revoke or deactivate the access key in IAM immediately — assume it's compromised, since bots scan GitHub for strings starting with AKIA... within minutes. "
            "Then create a new key, check CloudTrail for unexpected activity, and look for new EC2 instances in unusual regions. Removing it from git history (git filter-repo, BFG) is secondary. "
            f"{pick(WAIT)}I should not ask them to paste the key here. I'll just say 'the key ID starting with AKIA' and keep everything generic.")
    if k == 5:
        return wrap("the difference between Slack bot tokens and user tokens",
            "Bot tokens start with xoxb- and act as the app's bot user, with scopes granted to the bot. User tokens start with xoxp- and act on behalf of the installing user. "
            "App-level tokens for Socket Mode start with xapp-. For their use case — posting alerts to a channel — a bot token with chat:write is enough. "
            f"{pick(WAIT)}they asked if they can hardcode it in the script. No: store it as SLACK_BOT_TOKEN in a secret manager and reference it. In the example I'll write the token as xoxb-... or <SLACK_BOT_TOKEN>.")
    if k == 6:
        return wrap("to compare GitHub classic tokens and fine-grained tokens",
            "Classic personal access tokens start with ghp_ and have broad scopes like repo. Fine-grained ones start with github_pat_ and can be restricted to specific repositories and permissions, with mandatory expiry. "
            "For CI they should prefer the built-in GITHUB_TOKEN or a GitHub App installation token (ghs_...), which are short-lived. "
            f"{pick(WAIT)}the user wants to push to another repo from Actions — GITHUB_TOKEN can't do cross-repo by default, so a fine-grained PAT scoped to that one repo, stored as a repository secret, is reasonable.")
    if k == 7:
        return wrap("how Stripe test and live keys differ",
            "Stripe has publishable keys (pk_test_..., pk_live_...) that go in the frontend, and secret keys (sk_test_..., sk_live_...) that must stay on the server. Restricted keys start with rk_. "
            "Test mode keys only touch test data. Their bug: charges appear in the dashboard test view, meaning the server still uses the test secret. "
            f"{pick(WAIT)}they probably set STRIPE_SECRET_KEY in .env.local but the production build reads .env.production. I'll suggest checking which env file is loaded, without them sharing the actual value.")
    if k == 8:
        n = rng.randint(8, 16)
        return wrap("to design a password policy for their app",
            f"NIST 800-63B says: minimum {n if n >= 8 else 8} characters, allow long passphrases up to 64+, no forced composition rules, no periodic rotation unless compromised, and check against breached password lists. "
            "So rather than requiring 'one uppercase, one symbol', check candidates against something like the HaveIBeenPwned k-anonymity API — send only the first five hex chars of the SHA-1. "
            f"{pick(WAIT)}'Password123!' satisfies classic complexity rules and is still terrible, which is a good example to show why composition rules don't help. Add rate limiting and MFA.")
    return wrap("how API key rotation should work without downtime",
        "The standard pattern is dual keys: issue a new key while the old one remains valid, deploy the new key to all clients, verify traffic has moved (by last-used timestamps), then revoke the old one. "
        "Store keys hashed on the server side, like passwords, showing only a prefix such as 'key_ab12…' so users can identify them. "
        f"{pick(WAIT)}the user's service reads the key once at startup. Then rotation needs a restart or a reload hook — maybe fetch from Vault with a TTL instead. I'll describe both.")


def hashes_and_ids():
    k = rng.randrange(10)
    if k == 0:
        a, b = sha40(), sha40()
        return wrap("to figure out which commit introduced a regression",
            f"They ran git bisect. Good commit: {a}, bad commit: {b}. Bisect says the first bad commit is {b[:12]}... wait, that's the tip they marked bad, "
            f"so bisect didn't narrow anything — maybe they marked every step 'bad'. Let me look at the log they pasted: commit {sha40()} 'Refactor cache keys', commit {sha40()} 'Bump deps'. "
            "The cache key refactor seems most suspicious. I'll suggest restarting bisect with a scripted test via git bisect run.")
    if k == 1:
        d = hashlib.sha256(rs(ALNUM, 30).encode()).hexdigest()
        d2 = d[:-6] + rs(HEX, 6)
        return wrap("to verify a downloaded ISO",
            f"The published SHA-256 is {d}. Their sha256sum output is {d2}. Let me compare... the first {len(d)-6} characters match but the last six differ: {d[-6:]} vs {d2[-6:]}. "
            f"So the download is corrupt or tampered. {pick(WAIT)}make sure they're comparing against the checksum for the same file/arch. If so, re-download, preferably over HTTPS, and verify the GPG signature on the SHA256SUMS file too.")
    if k == 2:
        ids = [uid() for _ in range(3)]
        return wrap("to explain why their lookups by id fail",
            f"The ids in the database are like {ids[0]} and {ids[1]}, but their API receives {ids[2].upper()} — uppercase. Postgres uuid type compares case-insensitively, "
            f"but they store ids as TEXT, so '{ids[2]}' != '{ids[2].upper()}'. {pick(WAIT)}the version nibble is 4 in all of these, so they're random v4 UUIDs — fine. "
            "Fix: migrate the column to uuid type, or lower() on input. I'll recommend the uuid type.")
    if k == 3:
        req = "req_" + rs(ALNUM, 24)
        trace = rs(HEX, 32)
        return wrap("help correlating a failed request across services",
            f"The error response included request id {req} and the trace header traceparent: 00-{trace}-{rs(HEX,16)}-01. "
            f"So I'd search the logs for trace id {trace} across the gateway and the downstream service. {pick(WAIT)}the request id format is the vendor's, while the traceparent is W3C; they may not be linked. "
            "Better to search both. The 502 probably came from the upstream timeout at 30s.")
    if k == 4:
        et = rs(HEX, 32)
        return wrap("why their browser keeps re-downloading a large JSON file",
            f"Response headers: ETag: \"{et}\", Cache-Control: no-cache. no-cache means revalidate, not 'don't store'. On revalidation the browser sends If-None-Match: \"{et}\" and should get 304. "
            f"But they see 200 every time, and the ETag changes: next one was W/\"{rs(HEX,8)}-{rs(HEX,12)}\". {pick(WAIT)}a weak ETag that changes per request suggests it's generated per-instance behind a load balancer. "
            "Fix: compute ETag from content hash consistently across instances.")
    if k == 5:
        raw = json.dumps({"v": 1, "kind": pick(["thumbnail", "report", "config"]), "n": rng.randint(1, 999)})
        enc = base64.b64encode(raw.encode()).decode()
        return wrap("to decode a base64 string they found in a log",
            f"The string is {enc}. Decoding base64: it starts with eyJ, which is the encoding of '{{\"', so it's JSON. Decoded it's {raw}. "
            f"{pick(WAIT)}there's also a longer blob: {b64blob(48)} — that one doesn't decode to printable text, likely binary, maybe a compressed or encrypted payload. I can't tell more without context.")
    if k == 6:
        cols = ["#" + rs("0123456789ABCDEF", 6) for _ in range(4)]
        return wrap("to pick accessible text colors for their palette",
            f"Their palette: {', '.join(cols)}. For each I need the relative luminance and contrast against white (#FFFFFF) and near-black (#111827). "
            f"Take {cols[0]}: split into R={int(cols[0][1:3],16)}, G={int(cols[0][3:5],16)}, B={int(cols[0][5:7],16)}, linearize, weight 0.2126/0.7152/0.0722. "
            f"{pick(WAIT)}WCAG AA needs 4.5:1 for normal text. I'll compute each and recommend white or dark text accordingly.")
    if k == 7:
        dig = "sha256:" + rs(HEX, 64)
        return wrap("to pin a Docker image by digest",
            f"Instead of FROM python:3.12-slim, use FROM python:3.12-slim@{dig}. The digest they got from docker inspect is {dig}. "
            f"{pick(WAIT)}that might be the platform-specific manifest digest rather than the index digest; for multi-arch builds they want the index digest from docker buildx imagetools inspect. "
            "Pinning gives reproducibility; Renovate or Dependabot can bump it.")
    if k == 8:
        salt = rs("./" + ALNUM, 22)
        h = "$2b$12$" + salt + rs("./" + ALNUM, 31)
        return wrap("why two bcrypt hashes of the same password differ",
            f"They hashed the same password twice and got {h} and {'$2b$12$' + rs('./' + ALNUM, 53)}. That's expected: $2b$ is the algorithm, 12 is the cost, "
            f"the next 22 characters ({salt}) are the random salt, and the rest is the hash. {pick(WAIT)}they're comparing hashes with == — that will never match. Use bcrypt.checkpw(password, stored_hash).")
    md5 = rs(HEX, 32)
    return wrap("whether MD5 checksums are fine for deduplicating files",
        f"They dedupe uploads by md5 like {md5}. For accidental duplicates MD5 is fine statistically, but collisions can be crafted deliberately, so if users upload adversarial files, "
        f"someone could make two different files with the same MD5. {pick(WAIT)}S3 ETags for multipart uploads look like {rs(HEX,32)}-{rng.randint(2,40)}, which is not the MD5 of the whole file. "
        "So they can't rely on ETag for dedupe either. Recommend SHA-256 computed server-side.")


def devops_config():
    k = rng.randrange(9)
    proj = pick(PROJECTS)
    if k == 0:
        return wrap("to fix their docker-compose database connection",
            f"Their compose file:\n\nservices:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_USER: app\n      POSTGRES_PASSWORD: ${{DB_PASSWORD}}\n  api:\n    build: ./{proj}\n    environment:\n      DATABASE_URL: postgres://app:${{DB_PASSWORD}}@db:5432/app\n\n"
            f"The error is 'password authentication failed for user app'. {pick(WAIT)}the postgres image only applies POSTGRES_PASSWORD on first init; if the volume already exists, changing DB_PASSWORD in .env doesn't change it. "
            "So either docker compose down -v (losing data) or ALTER USER inside the container.")
    if k == 1:
        return wrap("help writing a Kubernetes deployment that reads a secret",
            f"In the container spec:\n\nenv:\n  - name: API_TOKEN\n    valueFrom:\n      secretKeyRef:\n        name: {proj}-secrets\n        key: api-token\n\n"
            f"And the Secret is created out-of-band with kubectl create secret generic {proj}-secrets --from-literal=api-token=<value>. "
            f"{pick(WAIT)}they committed a Secret manifest with base64 data to git — base64 isn't encryption. Suggest Sealed Secrets or External Secrets Operator instead.")
    if k == 2:
        return wrap("to write a .env.example for their project",
            "It should list every variable without real values:\n\nDATABASE_URL=postgres://user:password@localhost:5432/dbname\nREDIS_URL=redis://localhost:6379/0\nSTRIPE_SECRET_KEY=sk_test_xxx\nOPENAI_API_KEY=your-key-here\nJWT_SECRET=changeme\nSENTRY_DSN=\n\n"
            f"{pick(WAIT)}'password' in the DATABASE_URL is a literal placeholder, fine for an example file. I'll add a comment that .env is git-ignored and the app should fail fast if JWT_SECRET is still 'changeme'.")
    if k == 3:
        return wrap("to fix a GitHub Actions workflow that can't publish to npm",
            "Their step:\n\n- run: npm publish\n  env:\n    NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}\n\n"
            f"But actions/setup-node needs registry-url: 'https://registry.npmjs.org' so that it writes an .npmrc referencing NODE_AUTH_TOKEN. Without it, npm ignores the env var. "
            f"{pick(WAIT)}if the workflow runs on pull_request from a fork, secrets aren't available at all. They said it runs on release published, so it's the registry-url issue.")
    if k == 4:
        return wrap("help with Terraform variables for an RDS instance",
            "They have variable \"db_password\" { type = string, sensitive = true } and pass it via TF_VAR_db_password from the CI secret store. "
            "resource \"aws_db_instance\" uses password = var.db_password. The concern is the value still ends up in state. "
            f"{pick(WAIT)}newer AWS provider supports manage_master_user_password = true, letting RDS store it in Secrets Manager, so it never enters state. That's the better recommendation. Also encrypt the state bucket.")
    if k == 5:
        port = rng.choice([3000, 8000, 8080, 5000])
        return wrap("to configure nginx as a reverse proxy",
            f"server {{\n  listen 443 ssl;\n  server_name {proj}.example.com;\n  ssl_certificate /etc/letsencrypt/live/{proj}.example.com/fullchain.pem;\n  ssl_certificate_key /etc/letsencrypt/live/{proj}.example.com/privkey.pem;\n  location / {{ proxy_pass http://127.0.0.1:{port}; proxy_set_header Host $host; }}\n}}\n\n"
            f"{pick(WAIT)}they get 502 — the app might bind to localhost inside a container, so 127.0.0.1:{port} on the host doesn't reach it. Check with curl on the host first. Also add X-Forwarded-Proto.")
    if k == 6:
        return wrap("why their Spring Boot app doesn't pick up the datasource password",
            "application.yml has:\n\nspring:\n  datasource:\n    url: jdbc:postgresql://db:5432/app\n    username: ${DB_USER:app}\n    password: ${DB_PASSWORD}\n\n"
            f"And they set db_password in the environment — lowercase. Spring's relaxed binding maps SPRING_DATASOURCE_PASSWORD, but a ${{DB_PASSWORD}} placeholder needs the exact name DB_PASSWORD. "
            f"{pick(WAIT)}on Linux env vars are case-sensitive, so yes, that's the bug. Rename to DB_PASSWORD.")
    if k == 7:
        return wrap("to set up a systemd service with an environment file",
            f"[Service]\nExecStart=/opt/{proj}/bin/server\nEnvironmentFile=/etc/{proj}/env\nUser={proj.split('-')[0]}\nRestart=on-failure\n\n"
            f"The env file contains lines like API_KEY=<redacted> and LOG_LEVEL=info. Permissions should be 0600 owned by root, since systemd reads it as root before dropping privileges. "
            f"{pick(WAIT)}they quoted values with export API_KEY=... — EnvironmentFile doesn't support 'export'. Remove it.")
    return wrap("to debug a Helm values override",
        f"values.yaml:\n\nimage:\n  repository: registry.example.com/{proj}\n  tag: \"{rng.randint(1,3)}.{rng.randint(0,20)}.{rng.randint(0,9)}\"\nauth:\n  existingSecret: {proj}-auth\n  passwordKey: password\n\n"
        f"They pass --set auth.password=... but the chart ignores it when existingSecret is set. {pick(WAIT)}that's by design in most Bitnami-style charts. So either unset existingSecret or update the secret itself.")


def crypto_concepts():
    k = rng.randrange(9)
    if k == 0:
        pub = "AAAAC3NzaC1lZDI1NTE5AAAAI" + rs(B64, 43)
        fp = "SHA256:" + rs(B64, 43)
        return wrap("to add their SSH key to a server",
            f"They pasted their public key: ssh-ed25519 {pub} {pick(NAMES).lower()}@laptop. That's the .pub file, safe to share. It goes into ~/.ssh/authorized_keys on the server. "
            f"When connecting, the server's host key fingerprint shown was {fp}. {pick(WAIT)}they should verify that fingerprint against the provider console, not just type yes. Permissions: ~/.ssh 700, authorized_keys 600.")
    if k == 1:
        ver = rs(B64URL, 43)
        ch = base64.urlsafe_b64encode(hashlib.sha256(ver.encode()).digest()).decode().rstrip("=")
        return wrap("to explain PKCE with a concrete example",
            f"The client generates a random code_verifier, say {ver} (43 chars from the unreserved set). Then code_challenge = BASE64URL(SHA256(verifier)) = {ch}. "
            f"The authorize request sends code_challenge and code_challenge_method=S256; the token request sends the verifier. {pick(WAIT)}this example verifier is just illustrative; in real code it must come from a CSPRNG per request. "
            "An attacker who intercepts the code can't redeem it without the verifier.")
    if k == 2:
        nonce = rs(HEX, 24)
        return wrap("why AES-GCM nonces must never repeat",
            f"GCM uses a 96-bit nonce, e.g. {nonce}. If the same key and nonce encrypt two messages, the keystreams are identical, so XORing ciphertexts reveals XOR of plaintexts, "
            f"and worse, the GHASH authentication key can be recovered, allowing forgeries. {pick(WAIT)}with random 96-bit nonces, the birthday bound means you should rotate keys after about 2^32 messages. "
            "A counter-based nonce avoids that if state is reliable.")
    if k == 3:
        salt = rs(HEX, 32)
        return wrap("how salts work in PBKDF2",
            f"Example: salt = {salt} (16 random bytes in hex), iterations = 600000, hash = SHA-256, output length 32 bytes. The salt is stored next to the derived hash; it's not secret. "
            f"Its purpose is to make precomputed tables useless and ensure identical passwords produce different hashes. {pick(WAIT)}the user asked if they should encrypt the salt — no, that adds nothing. A separate secret 'pepper' in an HSM is a different concept.")
    if k == 4:
        return wrap("to walk through textbook RSA with small numbers",
            "Pick p = 61, q = 53. n = 3233. phi = 60 * 52 = 3120. Choose e = 17, gcd(17, 3120) = 1. d is the inverse of 17 mod 3120: 17 * 2753 = 46801 = 15*3120 + 1, so d = 2753. "
            f"Encrypt m = 65: c = 65^17 mod 3233 = 2790. Decrypt: 2790^2753 mod 3233 = 65. {pick(WAIT)}I should note this 'private exponent' 2753 is a toy and textbook RSA without padding is insecure; real systems use OAEP and 2048+ bit moduli.")
    if k == 5:
        body = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + rs(B64, 88 - 36)
        return wrap("to check what kind of key is in a PEM file they shared",
            f"The file is:\n\n-----BEGIN PUBLIC KEY-----\n{body[:64]}\n{body[64:]}\n-----END PUBLIC KEY-----\n\n"
            "The prefix MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE is the DER header for an EC P-256 SubjectPublicKeyInfo, so it's an ECDSA P-256 public key. Public, fine to share. "
            f"{pick(WAIT)}they want to verify JWTs with ES256 — this is exactly what goes into the verifier config.")
    if k == 6:
        g, p, a, b = 5, 23, rng.randint(2, 20), rng.randint(2, 20)
        A, B = pow(g, a, p), pow(g, b, p)
        return wrap("to illustrate Diffie-Hellman with small numbers",
            f"Public parameters g = {g}, p = {p}. Alice picks a = {a}, sends A = 5^{a} mod 23 = {A}. Bob picks b = {b}, sends B = 5^{b} mod 23 = {B}. "
            f"Shared secret: B^a mod p = {pow(B, a, p)}, and A^b mod p = {pow(A, b, p)}. Same. {pick(WAIT)}with p = 23 anyone can brute force a; real DH uses 2048-bit groups or X25519.")
    if k == 7:
        fp = ":".join(rs("0123456789ABCDEF", 2) for _ in range(32))
        return wrap("to explain certificate pinning",
            f"The server's leaf certificate SHA-256 fingerprint is {fp}. Pinning the leaf means the app breaks on every renewal. "
            f"Better to pin the SPKI hash of an intermediate or keep a backup pin, e.g. pin-sha256=\"{b64blob(32)}\". {pick(WAIT)}HPKP is deprecated in browsers, so this only makes sense for mobile apps.")
    h = rs(HEX, 64)
    return wrap("how HMAC webhook signatures are verified",
        f"The provider sends header X-Signature: sha256={h}. The server computes HMAC-SHA256(webhook_secret, raw_body) and compares in constant time. "
        "The secret itself is configured as WEBHOOK_SECRET in their env and never appears in the request. "
        f"{pick(WAIT)}they parse JSON first and re-serialize — that changes whitespace and breaks the signature. Must use the raw bytes.")


def data_analysis():
    k = rng.randrange(8)
    if k == 0:
        vals = sorted(rng.randint(10, 200) for _ in range(9))
        mean = sum(vals) / len(vals)
        return wrap("the mean, median, and whether there are outliers",
            f"The values sorted: {vals}. Sum = {sum(vals)}, n = 9, mean = {mean:.2f}. Median is the 5th value: {vals[4]}. "
            f"Q1 ≈ {vals[2]}, Q3 ≈ {vals[6]}, IQR = {vals[6]-vals[2]}. Fences: {vals[2]-1.5*(vals[6]-vals[2]):.1f} and {vals[6]+1.5*(vals[6]-vals[2]):.1f}. "
            f"{pick(WAIT)}with only 9 points, quartile conventions differ; I'll note that. Anything outside the fences counts as an outlier.")
    if k == 1:
        ca, na, cb, nb = rng.randint(80, 150), rng.randint(2000, 3000), rng.randint(90, 170), rng.randint(2000, 3000)
        pa, pb = ca / na, cb / nb
        p = (ca + cb) / (na + nb)
        se = (p * (1 - p) * (1 / na + 1 / nb)) ** 0.5
        return wrap("to evaluate an A/B test",
            f"Control: {ca}/{na} = {pa:.4f}. Variant: {cb}/{nb} = {pb:.4f}. Pooled p = {p:.4f}. SE = sqrt(p(1-p)(1/na + 1/nb)) = {se:.5f}. z = {(pb-pa)/se:.2f}. "
            f"{pick(WAIT)}they peeked daily and stopped when it looked significant — that inflates false positives. I'll flag that alongside the z-test result.")
    if k == 2:
        return wrap("a pandas groupby that returns unexpected results",
            "Their code: df.groupby('region')['revenue'].mean(). The output shows NaN for 'EMEA'. Probably revenue is object dtype because some rows contain '1,200' strings. "
            f"{pick(WAIT)}mean on object column would error in newer pandas, not NaN. So more likely all EMEA revenue values are NaN — maybe a merge on mismatched keys ('EMEA ' with trailing space). "
            "Suggest df['region'].str.strip() and checking df[df.region.str.contains('EMEA')].revenue.isna().sum().")
    if k == 3:
        r = rng.uniform(0.3, 0.9)
        return wrap("whether correlation implies their feature causes churn",
            f"They found r = {r:.2f} between support tickets and churn. That's a {'strong' if r > 0.6 else 'moderate'} correlation, but tickets could be a symptom: unhappy users file tickets and also churn. "
            f"{pick(WAIT)}there's also exposure bias — long-tenure customers have more time to file tickets. Normalize per month. A causal claim would need an experiment or at least controlling for tenure and plan.")
    if k == 4:
        months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]
        rev = [rng.randint(40, 90) * 1000 for _ in months]
        g = (rev[-1] / rev[0]) ** (1 / 5) - 1
        return wrap("to summarize monthly revenue growth",
            "Revenue: " + ", ".join(f"{m} ${v:,}" for m, v in zip(months, rev)) + f". Compound monthly growth from Jan to Jun = (Jun/Jan)^(1/5) - 1 = {g*100:.2f}%. "
            f"{pick(WAIT)}month-over-month is noisy; {months[rev.index(min(rev))]} is the low point. I'll present CMGR and mention the dip.")
    if k == 5:
        n, miss = rng.randint(5000, 50000), rng.randint(2, 30)
        return wrap("how to handle missing values in their dataset",
            f"{n} rows, the income column is {miss}% missing. Dropping rows loses {n*miss//100} records. Mean imputation shrinks variance. "
            f"{pick(WAIT)}if missingness correlates with the target (e.g. high earners skip the question), that's MNAR and imputation biases results. Suggest a missing-indicator feature plus median imputation, and compare.")
    if k == 6:
        return wrap("to write a SQL query for 7-day rolling active users",
            "SELECT d.day, COUNT(DISTINCT e.user_id) FROM days d JOIN events e ON e.event_date BETWEEN d.day - INTERVAL '6 days' AND d.day GROUP BY d.day ORDER BY d.day; "
            f"{pick(WAIT)}COUNT DISTINCT over a range join is expensive on big tables. Could precompute daily user sets or use HyperLogLog approximations. For a few million events it's fine.")
    acc, prec, rec = rng.uniform(0.9, 0.99), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.8)
    return wrap("whether their fraud model is good",
        f"Accuracy {acc:.3f}, precision {prec:.2f}, recall {rec:.2f}. With fraud at maybe 1%, a model predicting 'not fraud' always gets 99% accuracy, so accuracy is misleading. "
        f"F1 = {2*prec*rec/(prec+rec):.3f}. {pick(WAIT)}the cost asymmetry matters: a missed fraud costs more than a false alarm. Suggest PR-AUC and choosing a threshold by expected cost.")


def writing_help():
    k = rng.randrange(8)
    n = pick(NAMES)
    if k == 0:
        role = pick(["data analyst", "frontend developer", "product manager", "nurse", "teacher"])
        return wrap(f"help writing a cover letter for a {role} position",
            f"They're {n}, with {rng.randint(2,12)} years of experience. Structure: opening that names the role and a hook, a paragraph with two concrete achievements with numbers, "
            f"a paragraph on why this company, and a short close. {pick(WAIT)}they wrote 'I am passionate' three times in the draft. I'll suggest showing it via specific examples instead. Keep it under one page.")
    if k == 1:
        return wrap("to make an email to their manager sound less defensive",
            f"Draft: 'As I already said, the delay wasn't my fault, the vendor didn't deliver.' The phrase 'as I already said' reads as irritated. "
            f"Rewrite: 'Quick update on the delay: the vendor shipment slipped to Thursday. I've asked for a firm date and prepared a fallback plan.' "
            f"{pick(WAIT)}they still want to make clear it was external. The rewrite does that by stating facts without blame. Good.")
    if k == 2:
        topic = pick(["autumn", "the ocean", "an old city", "a train station at night"])
        return wrap(f"a short poem about {topic}",
            f"They want something not too cliché. Maybe focus on one concrete image rather than abstractions. Free verse, around 12 lines. "
            f"{pick(WAIT)}they mentioned liking internal rhyme. I'll use some slant rhyme rather than strict end rhyme. Start with a sound, end with a quiet image.")
    if k == 3:
        return wrap("to summarize a long article into three bullet points",
            "The article covers remote work productivity studies. Main points: productivity effects vary by task type; collaboration and mentoring suffer most; hybrid arrangements show the best retention. "
            f"{pick(WAIT)}the article also mentions a specific study with {rng.randint(1000,20000)} employees — include it as evidence in bullet one. Keep each bullet under 25 words.")
    if k == 4:
        return wrap("feedback on their essay's thesis statement",
            "The thesis: 'Social media has both positive and negative effects.' That's too broad to be arguable. A stronger thesis takes a position: "
            "'Social media's algorithmic feeds harm teenagers' sleep more than screen time alone explains.' "
            f"{pick(WAIT)}I shouldn't impose my argument. I'll give two alternative directions and explain what makes a thesis arguable.")
    if k == 5:
        return wrap("to translate an idiom naturally into Spanish",
            "'It's raining cats and dogs' — literal translation makes no sense. Spanish equivalents: 'está lloviendo a cántaros' or 'llueve a mares'. "
            f"{pick(WAIT)}regional differences: in parts of Latin America people say 'está cayendo un palo de agua'. I'll give the neutral option first.")
    if k == 6:
        return wrap("help with a wedding toast",
            f"They're the best friend of {n}. Structure: brief intro, one funny but kind story, one sincere moment, toast. 2-3 minutes, roughly 300-400 words. "
            f"{pick(WAIT)}the story they suggested involves an ex — avoid that at a wedding. I'll suggest the road-trip story instead.")
    return wrap("to tighten a paragraph in their README",
        "Their paragraph has 'This library basically allows you to very easily and quickly be able to parse...' Cut the fillers: 'This library parses...'. "
        f"Replace passive constructions, move the install command up. {pick(WAIT)}keep the badge line, they wanted it. Final version roughly half the length.")


def planning_tool_use():
    k = rng.randrange(9)
    if k == 0:
        cur = base64.b64encode(json.dumps({"page": rng.randint(2, 9), "sort": "created"}).encode()).decode()
        return wrap("all open issues, and the API is paginated",
            f"The first call to list_issues returned 50 results and next_cursor = \"{cur}\". That decodes to a page number — opaque anyway, I should just pass it back. "
            f"So next call: list_issues(state=\"open\", cursor=\"{cur}\"). {pick(WAIT)}the user only needs issues labeled 'bug'; I can add labels=\"bug\" to reduce pages. Then aggregate and summarize.")
    if k == 1:
        fid = "1" + rs(ALNUM + "-_", 32)
        return wrap("me to summarize a document from their drive",
            f"The search tool returned a file with id {fid}, name 'Q{rng.randint(1,4)} planning notes'. Next step: call read_file(file_id=\"{fid}\"). "
            f"{pick(WAIT)}there were two files with the same name; the other one was modified two years ago. The user said 'latest', so take this one. Then summarize key decisions and owners.")
    if k == 2:
        ev = rs(string.ascii_lowercase + string.digits, 26)
        return wrap("to move a meeting to Thursday afternoon",
            f"First get the event: calendar.get_event(event_id=\"{ev}\"). It's 30 minutes with {rng.randint(2,6)} attendees. Then check free/busy for Thursday 13:00-17:00. "
            f"{pick(WAIT)}the user is in Europe/Berlin but the calendar returned UTC times. Convert before proposing slots. Then update_event with the new start and sendUpdates='all'.")
    if k == 3:
        tk = f"{pick(['OPS','WEB','DATA','INFRA'])}-{rng.randint(100,9999)}"
        return wrap(f"the status of ticket {tk} and to add a comment",
            f"Plan: call jira.get_issue(key=\"{tk}\") to read status and assignee, then jira.add_comment with the user's text. "
            f"{pick(WAIT)}the user said 'ping the assignee' — a comment with an @mention requires the accountId, e.g. {rs(HEX,24)}, which I get from the get_issue response. Don't guess it.")
    if k == 4:
        oid = f"ord_{rs(ALNUM, 14)}"
        return wrap("a refund on an order",
            f"The order lookup returned id {oid}, amount ${rng.randint(10,400)}.{rng.randint(10,99)}, status 'delivered'. The refund tool needs order_id and amount. "
            f"{pick(WAIT)}refunds over a certain amount need human approval per the tool description. I should confirm the amount with the user before calling create_refund.")
    if k == 5:
        q = pick(["python asyncio timeout", "best hiking trails near Denver", "EU AI act summary", "how to descale espresso machine"])
        return wrap(f"information about '{q}'",
            f"I'll call web_search with query \"{q}\". The results include {rng.randint(3,8)} links; the top two look authoritative. Then fetch_page on those. "
            f"{pick(WAIT)}one result URL has tracking params like ?utm_source=x&gclid={rs(ALNUM+'_-',40)} — strip them before fetching, they're irrelevant.")
    if k == 6:
        sid = uid()
        return wrap("to rerun the failed CI job",
            f"list_runs shows run {rng.randint(10**9, 10**10)} failed in job 'test' at step 'pytest'. The logs reference session {sid}. "
            f"{pick(WAIT)}rerunning all jobs wastes time; the API supports rerun-failed-jobs. Use that, then poll get_run every 30s until it completes.")
    if k == 7:
        tok = rs(ALNUM, 40)
        return wrap("every row from a spreadsheet API with a page token",
            f"The response had 1000 rows and nextPageToken \"{tok}\". I'll loop: while the token exists, call values.get(pageToken=token). "
            f"{pick(WAIT)}page tokens expire, so don't store it for later. And there's a rate limit of 60 reads per minute — with maybe 12 pages that's fine.")
    return wrap("to find which of their servers has high CPU",
        f"Tools available: metrics.query and hosts.list. First hosts.list(tag='prod') gives instance ids like i-{rs(HEX,17)} and i-{rs(HEX,17)}. "
        f"Then metrics.query('avg(cpu) by host', window='1h'). {pick(WAIT)}querying per-host would be N calls; the group-by query does it in one. Better.")


def misc():
    k = rng.randrange(8)
    if k == 0:
        s = rng.randint(2, 8)
        return wrap(f"to scale a recipe from 4 servings to {s}",
            f"Factor = {s}/4 = {s/4}. 200 g flour becomes {200*s/4:g} g, 3 eggs becomes {3*s/4:g} — round to {round(3*s/4) or 1}. "
            f"{pick(WAIT)}baking time doesn't scale linearly; a larger pan needs a bit longer but lower temperature. I'll note to check doneness early.")
    if k == 1:
        city = pick(["Lisbon", "Kyoto", "Mexico City", "Prague", "Cape Town"])
        d = rng.randint(2, 6)
        return wrap(f"a {d}-day itinerary for {city}",
            f"Day 1 should be the central historic area, low effort due to jet lag. Group sights geographically to reduce transit. "
            f"{pick(WAIT)}they mentioned traveling with a toddler — fewer museums, more parks, and a midday break. I'll give morning/afternoon blocks.")
    if k == 2:
        return wrap("why the Roman Empire in the West fell",
            "There's no single cause. Historians cite fiscal strain, reliance on federated troops, political instability (many emperors in the 3rd century), pressure from migrating groups, and the split administration. "
            f"{pick(WAIT)}476 is the conventional date, but the Eastern Empire continued until 1453. I'll mention that the 'fall' framing itself is debated.")
    if k == 3:
        b = rng.randint(20, 150)
        return wrap(f"gift ideas for a coworker under ${b}",
            f"They like coffee and hiking. Options: a good hand grinder, a trail guidebook, an insulated bottle. Keep it impersonal-ish for a coworker. "
            f"{pick(WAIT)}a grinder might be over ${b}. Good ones are around $60-100. I'll order suggestions by price.")
    if k == 4:
        return wrap("how to get their sourdough starter more active",
            "It's sluggish: doubling takes 12 hours. Likely too cold or underfed. Feed 1:2:2 (starter:flour:water) twice a day at around 24-26°C. "
            f"{pick(WAIT)}they use chlorinated tap water — could slow things. Leave water out overnight or use filtered. Adding some rye flour also helps.")
    if k == 5:
        return wrap("to compare leasing versus buying a car",
            f"Buying at ${rng.randint(25,45)},000 with a {rng.randint(3,7)}% loan versus leasing at ${rng.randint(300,600)}/month for 36 months. Total lease cost plus no equity at the end. "
            f"{pick(WAIT)}they drive ~{rng.randint(15,25)}k miles a year, which exceeds typical lease limits of 12k. Overage fees make buying better here.")
    if k == 6:
        return wrap("why the sky is blue",
            "Rayleigh scattering: scattering intensity goes like 1/λ^4, so blue light (~450 nm) scatters much more than red (~700 nm). "
            f"{pick(WAIT)}then why not violet? The sun emits less violet, some is absorbed high in the atmosphere, and our eyes are less sensitive to it. Sunsets are red because light passes through more atmosphere.")
    return wrap("tips for a first half marathon",
        f"They have {rng.randint(8,16)} weeks. Build long runs gradually to ~18-19 km, mostly easy pace, one tempo session per week. "
        f"{pick(WAIT)}they currently run 10 km total per week — the 10% rule suggests careful progression. Add rest days and practice race-day fueling.")


BENIGN = {
    "math_and_logic": math_and_logic, "coding_debug": coding_debug, "security_discussion": security_discussion,
    "hashes_and_ids": hashes_and_ids, "devops_config": devops_config, "crypto_concepts": crypto_concepts,
    "data_analysis": data_analysis, "writing_help": writing_help, "planning_tool_use": planning_tool_use, "misc": misc,
}

# ---------------------------------------------------------------- secrets ---
def k_openai():
    if rng.random() < 0.6:
        return "sk-proj-" + rs(ALNUM + "-_", 74) + "T3BlbkFJ" + rs(ALNUM + "-_", 74)
    return "sk-" + rs(ALNUM, 20) + "T3BlbkFJ" + rs(ALNUM, 20)

def k_anthropic():
    return "sk-ant-api03-" + rs(ALNUM + "-_", 93) + "AA"

def k_aws():
    kid = pick(["AKIA", "ASIA"]) if rng.random() < 0.3 else "AKIA"
    return (kid + rs("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16), rs(ALNUM + "+/", 40))

def k_github():
    r = rng.random()
    if r < 0.5:
        return "ghp_" + rs(ALNUM, 36)
    if r < 0.75:
        return "github_pat_" + rs(UPALNUM, 22) + "_" + rs(ALNUM, 59)
    return "gho_" + rs(ALNUM, 36)

def k_slack():
    t = pick(["xoxb", "xoxb", "xoxp", "xoxa"])
    if t == "xoxp":
        return f"xoxp-{rng.randint(10**10,10**12)}-{rng.randint(10**10,10**12)}-{rng.randint(10**10,10**12)}-{rs(HEX,32)}"
    return f"{t}-{rng.randint(10**10,10**12)}-{rng.randint(10**10,10**13)}-{rs(ALNUM,24)}"

def k_stripe():
    p = pick(["sk_live_", "sk_live_", "rk_live_"])
    return p + rs(ALNUM, rng.choice([24, 99]))

def k_pem():
    kind = rng.randrange(3)
    if kind == 0:
        body = b64blob(121)
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        return "-----BEGIN EC PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END EC PRIVATE KEY-----"
    if kind == 1:
        body = "MC4CAQAwBQYDK2VwBCIEI" + b64blob(30)[:27]
        return "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----"
    body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW" + b64blob(250)
    lines = [body[i:i + 70] for i in range(0, len(body), 70)]
    return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END OPENSSH PRIVATE KEY-----"

def k_password():
    r = rng.randrange(3)
    if r == 0:
        return rs(ALNUM, 4) + pick("#!@$%&*") + rs(ALNUM, 4) + pick("#!@$%&*") + rs(ALNUM, 3)
    if r == 1:
        w = pick(["Falcon", "Maple", "Orbit", "Cobalt", "Harbor", "Juniper", "Tundra", "Velvet"])
        return w + str(rng.randint(10, 99)) + pick("!#$") + pick(["river", "stone", "lamp", "north"]) + str(rng.randint(100, 999))
    return rs(ALNUM + "!#%^*", rng.randint(14, 22))

GENERIC = [
    ("SendGrid API key", lambda: "SG." + rs(ALNUM + "-_", 22) + "." + rs(ALNUM + "-_", 43)),
    ("Mailgun API key", lambda: "key-" + rs(HEX, 32)),
    ("OpenWeatherMap API key", lambda: rs(HEX, 32)),
    ("Twilio auth token", lambda: rs(HEX, 32)),
    ("Datadog API key", lambda: rs(HEX, 32)),
    ("Google Maps API key", lambda: "AIza" + rs(ALNUM + "-_", 35)),
    ("internal service API key", lambda: rs(ALNUM, 40)),
    ("HubSpot private app token", lambda: "pat-na1-" + uid()),
    ("Algolia admin API key", lambda: rs(HEX, 32)),
    ("Mapbox secret token", lambda: "sk." + rs(ALNUM, 60) + "." + rs(ALNUM + "-_", 22)),
]

# Secret scenario templates: (goal, pre, post) where {S} is the secret sentence slot.
def secret_text(goal, pre, secret_sentence, post):
    return opener(goal) + " " + pre + " " + secret_sentence + " " + post + (" " + pick(CLOSE) if rng.random() < 0.6 else "")

PRE_GENERIC = [
    "First, let me re-read what they pasted earlier in the conversation to see what configuration they're actually running.",
    "Let me look at the file I opened with the read tool a moment ago, since the error probably comes from there.",
    "I need to reconstruct the exact setup before suggesting a fix. They shared the config a few turns back.",
    "Okay, the tool output from cat on the config file is in front of me, so let me check the relevant line.",
    "Let me go back to the environment dump they shared, because the symptom smells like a misconfigured variable.",
    "The stack trace points at the client initialization, so the credentials passed in are the first thing to verify. Let me scroll up to where they showed that part.",
    "Hmm, the user said it worked yesterday and nothing changed. Let me compare what the code loads with what they showed me earlier.",
    "Before guessing, I'll look at the actual values. The read_file result from their repo included the settings module.",
]
POST_GENERIC = [
    "{W}that value is exactly what the request is sending, so the credential itself isn't malformed. The problem must be elsewhere, maybe the header name or the base URL.",
    "{W}the format looks right and there's no trailing whitespace, so the 401 is likely because the key was revoked or belongs to a different project.",
    "So the value is set. Next I'll check whether the process actually loads that file at startup, since the logs show the fallback path.",
    "{W}they asked me to just make the script work, so I'll wire this value into the client constructor and run the test call.",
    "Good, that's the one. Now let me check the permissions or scopes attached to it, because the error is 403 not 401.",
    "{W}the code reads the variable with a different name than the one set, so at runtime the client gets None and falls back to anonymous access. That explains the error message.",
    "Okay. Since that part is fine, the next suspect is the clock skew or the region setting. I'll ask them to print the resolved endpoint.",
    "{W}this is being loaded in a worker process that doesn't inherit the shell environment. That would explain why it works locally but not under the process manager.",
]

def post():
    return pick(POST_GENERIC).replace("{W}", pick(WAIT))

def s_openai():
    k = k_openai()
    goal = pick(["to fix their script that calls the OpenAI API", "why their chatbot returns 401 errors", "to get their embeddings job running again"])
    sent = pick([f"In the .env file the line is OPENAI_API_KEY={k}.", f"They set the key directly in the code: client = OpenAI(api_key=\"{k}\").",
                 f"The user pasted their key earlier: {k}.", f"The environment shows OPENAI_API_KEY=\"{k}\" exported in their shell profile."])
    return secret_text(goal, pick(PRE_GENERIC), sent, post()), k

def s_anthropic():
    k = k_anthropic()
    goal = pick(["to debug their Claude API integration", "why the Anthropic SDK says authentication failed", "to set up their agent to call the Anthropic API"])
    sent = pick([f"The config.json has \"anthropic_api_key\": \"{k}\".", f"They wrote client = anthropic.Anthropic(api_key=\"{k}\") in main.py.",
                 f"From the earlier message the key is {k}.", f"The curl command they ran had -H \"x-api-key: {k}\"."])
    return secret_text(goal, pick(PRE_GENERIC), sent, post()), k

def s_aws():
    kid, sec = k_aws()
    goal = pick(["to fix their boto3 upload to S3", "why the AWS CLI says InvalidClientTokenId", "to deploy their Lambda from a laptop"])
    sent = pick([f"~/.aws/credentials has aws_access_key_id = {kid} and aws_secret_access_key = {sec} under [default].",
                 f"They exported AWS_ACCESS_KEY_ID={kid} and AWS_SECRET_ACCESS_KEY={sec} in the terminal.",
                 f"The script has boto3.client('s3', aws_access_key_id='{kid}', aws_secret_access_key='{sec}')."])
    return secret_text(goal, pick(PRE_GENERIC), sent, post()), kid + " " + sec

def s_github():
    k = k_github()
    goal = pick(["why git push over HTTPS fails", "to call the GitHub API to list their repos", "to fix their CI job that clones a private repo"])
    sent = pick([f"The remote URL is https://{pick(NAMES).lower()}:{k}@github.com/acme/{pick(PROJECTS)}.git.", f"They set GITHUB_TOKEN={k} in the runner environment.",
                 f"The request used Authorization: token {k}.", f"Earlier they pasted the token: {k}."])
    return secret_text(goal, pick(PRE_GENERIC), sent, post()), k

def s_slack():
    k = k_slack()
    goal = pick(["why their Slack bot can't post to a channel", "to send a Slack alert from their monitoring script", "to fix the Slack integration in their app"])
    sent = pick([f"The bot is initialized with App(token=\"{k}\").", f"Their .env has SLACK_BOT_TOKEN={k}.",
                 f"The curl call used -H 'Authorization: Bearer {k}'.", f"The user shared the token earlier: {k}."])
    return secret_text(goal, pick(PRE_GENERIC), sent, post()), k

def s_stripe():
    k = k_stripe()
    goal = pick(["why their Stripe charges fail in production", "to create a payment intent from their backend", "to debug their Stripe webhook handler"])
    sent = pick([f"settings.py has STRIPE_SECRET_KEY = \"{k}\".", f"They call stripe.api_key = '{k}' at module import.",
                 f"From the environment dump: STRIPE_API_KEY={k}.", f"The user pasted the key they're using: {k}."])
    return secret_text(goal, pick(PRE_GENERIC), sent, post()), k

def s_pem():
    k = k_pem()
    goal = pick(["why ssh keeps asking for a password", "to sign JWTs with their private key", "to fix their TLS server that fails to start"])
    pre = pick(["They pasted the contents of the key file to show me the format.", "I read the key file with the file tool to check whether it's encrypted.",
                "Let me look at the key material in the deploy config they shared."])
    pre = pick(["The error they get is 'invalid format' or sometimes 'error in libcrypto', which usually means a line-ending or header problem, or the wrong key type for the tool.",
                "First thing is to figure out the key type, since the library expects a specific encoding and the config names an algorithm explicitly.",
                "They said the same key works on their laptop but not in the container, so copying or line breaks might be the issue. Let me check the format carefully.",
                "Hmm, the log line says the key could not be parsed. Before suggesting a regenerate, let me confirm what is actually in the file."]) + " " + pre
    sent = f"The file contains:\n\n{k}\n\n"
    pst = pick(["So it's not passphrase-protected. The permissions on the file are probably too open — ssh refuses keys readable by others. chmod 600.",
                "The header and footer match, so the parser should accept it. The error is probably a mismatch between the key type and the algorithm in the config.",
                "It's an unencrypted key, so the loader doesn't need a passphrase. Next, check that the public half matches the certificate."])
    return opener(goal) + " " + pre + " " + sent + pst, k

def s_password():
    k = k_password()
    svc = pick(["Postgres", "MySQL", "Redis", "the admin panel", "the SMTP relay", "the VPN", "MongoDB"])
    user = pick(["admin", "app", "root", "deploy", "svc_report"])
    goal = pick([f"why the connection to {svc} is refused", f"to help them log in to {svc} from a script", f"to fix authentication to {svc}"])
    sent = pick([f"The {svc} password is {k}, for user {user}.", f"They told me earlier the password for {user} is {k}.",
                 f"The connection string in the config reads user={user} password={k} host=10.0.{rng.randint(0,9)}.{rng.randint(2,250)}.",
                 f"The password they set for {user} is \"{k}\"."])
    return secret_text(goal, pick(PRE_GENERIC), sent, post()), k

def s_generic():
    name, f = pick(GENERIC)
    k = f()
    env = name.upper().replace(" ", "_").replace("-", "_")
    goal = pick([f"why requests with their {name} are rejected", f"to wire up their {name} in the app", f"to debug calls that use the {name}"])
    sent = pick([f"Their {name} is {k}.", f"The config sets {env}={k}.", f"In the code: api_key = \"{k}\"  # {name}.",
                 f"They pasted the {name} earlier: {k}."])
    return secret_text(goal, pick(PRE_GENERIC), sent, post()), k

SECRET = {
    "openai_key": s_openai, "anthropic_key": s_anthropic, "aws_keys": s_aws, "github_token": s_github,
    "slack_token": s_slack, "stripe_key": s_stripe, "private_key_pem": s_pem,
    "password_value": s_password, "generic_api_key": s_generic,
}

# ------------------------------------------------------------- validation ---
CRED_RES = [
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"sk-(?:proj-)?[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}"),
    re.compile(r"(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{8,}"),
    re.compile(r"github_pat_[A-Za-z0-9_]{8,}"),
    re.compile(r"xox[bpa]-[A-Za-z0-9\-]{8,}"),
    re.compile(r"(?:sk|rk)_live_[A-Za-z0-9]{8,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]

def cred_hits(t):
    return [m.group(0) for r in CRED_RES for m in r.finditer(t)]


def main():
    benign, seen = [], set()
    for cat, fn in BENIGN.items():
        got, tries = 0, 0
        while got < 30:
            tries += 1
            assert tries < 5000, cat
            t = fn()
            if t in seen or not (200 <= len(t) <= 1500):
                continue
            seen.add(t); benign.append({"text": t, "category": cat}); got += 1
    secret, secrets_meta = [], []
    for cat, fn in SECRET.items():
        got, tries = 0, 0
        while got < 10:
            tries += 1
            assert tries < 5000, cat
            t, k = fn()
            if t in seen or not (200 <= len(t) <= 1500):
                continue
            seen.add(t); secret.append({"text": t, "category": cat}); secrets_meta.append((cat, k, t)); got += 1

    os.makedirs(OUT, exist_ok=True)
    for name, rows in (("reasoning_benign.jsonl", benign), ("reasoning_secret.jsonl", secret)):
        with open(os.path.join(OUT, name), "w") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")

    # validate from disk
    report = {}
    for name, exp_total, exp_per in (("reasoning_benign.jsonl", 300, 30), ("reasoning_secret.jsonl", 90, 10)):
        rows = [json.loads(l) for l in open(os.path.join(OUT, name))]
        cats = {}
        for r in rows:
            assert set(r) == {"text", "category"}
            cats[r["category"]] = cats.get(r["category"], 0) + 1
        assert len(rows) == exp_total, (name, len(rows))
        assert all(v == exp_per for v in cats.values()), cats
        assert len({r["text"] for r in rows}) == exp_total, "duplicates"
        lens = [len(r["text"]) for r in rows]
        report[name] = {"rows": len(rows), "categories": cats, "min_len": min(lens), "max_len": max(lens)}
        if name.startswith("reasoning_benign"):
            bad = [(r["category"], cred_hits(r["text"])) for r in rows if cred_hits(r["text"])]
            report[name]["credential_shaped_hits"] = len(bad)
            assert not bad, bad[:5]
    # each secret value appears exactly once, and not at the very start
    no_prefix_hit = {}
    for cat, k, t in secrets_meta:
        for part in (k.split(" ") if cat == "aws_keys" else [k]):
            assert t.count(part) == 1, (cat, part)
            assert t.index(part) > len(t) * 0.2, (cat, "secret too early")
        if not cred_hits(t):
            no_prefix_hit[cat] = no_prefix_hit.get(cat, 0) + 1
    report["secret_rows_without_prefix_regex_hit"] = no_prefix_hit
    report["cross_file_duplicates"] = len(seen) - 390
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
