# Hand-written secret items: (category, text, value). Value kept only for validation.
S = []
def add(cat, items):
    for t, v in items:
        S.append((cat, t, v))

add("stated_plainly", [
 ("Your new password is Tr0mbone!Harbor42, so please change it after the first login.", "Tr0mbone!Harbor42"),
 ("I've set the staging admin password to qv7Lm2pXw9 for now.", "qv7Lm2pXw9"),
 ("The database password we agreed on is Maple#Fjord2291.", "Maple#Fjord2291"),
 ("For the record, Dana changed the SMTP password to glimmerstone88 yesterday afternoon.", "glimmerstone88"),
 ("My password for the billing portal is Sunf1ower&Rain and I keep forgetting it.", "Sunf1ower&Rain"),
 ("Okay, I reset it: the FTP account now uses Kx4!rTz8vQ as its password.", "Kx4!rTz8vQ"),
 ("Password for the shared analytics account: it's now bluecactus417, don't share it outside the team.", "bluecactus417"),
 ("We use P@ssage_to_Ind1a as the root password on the old build box, which is why I want to rotate it.", "P@ssage_to_Ind1a"),
 ("Just so you know, the temporary password I generated for you is wEq9-Hub3-Lo7x.", "wEq9-Hub3-Lo7x"),
 ("The Postgres superuser password was changed to Zanzibar!7731 during the migration.", "Zanzibar!7731"),
 ("He told me the admin password is quietlantern and that nobody ever changed it.", "quietlantern"),
 ("Set the service account's password to 4nT!c1pat3_99 and then restart the worker.", "4nT!c1pat3_99"),
 ("Marco's VPN password is Lisbon2019rocks, in case you need to connect from his laptop.", "Lisbon2019rocks"),
 ("I picked h7Rk2mQ9sV1x as the new password for the reporting user; it's in effect immediately.", "h7Rk2mQ9sV1x"),
 ("The password that finally worked on the printer's web console was Xerox_Tower%5.", "Xerox_Tower%5"),
])

add("loose_notes", [
 ("Handover notes: acct: ops / pw Gr8Wall!ofChina - rotate before Friday.", "Gr8Wall!ofChina"),
 ("login — admin, pass tornado77Blue, host is the rack 3 switch.", "tornado77Blue"),
 ("Ticket #4471 update: customer creds for the NAS are user backup, password Pl4tyPus$9, confirmed working at 10:42.", "Pl4tyPus$9"),
 ("Meeting notes 3/14: - migrate mail server - new SMTP pw: vR3nq8Lz0t - Sam to update the monitoring.", "vR3nq8Lz0t"),
 ("Jenkins | user: deploy | pwd: crimsonfalcon2 | owner: infra team", "crimsonfalcon2"),
 ("TODO list for Monday: renew cert, call vendor, kiosk login = kiosk / Qu3rty!Lime, test the scanner.", "Qu3rty!Lime"),
 ("Notes from support call: client uses 'frontdesk' as username and the pw is Hibiscus_2024 (she typed it twice to confirm).", "Hibiscus_2024"),
 ("creds for the lab box -> root : m0ngoose#Tail", "m0ngoose#Tail"),
 ("Standup: Priya blocked on QA env, login qa_user pass 8dh3kQpz1w, asked infra to unlock.", "8dh3kQpz1w"),
 ("Inventory sheet, row 12: Cisco router, admin pw Ferr1sWheel!, location server closet B.", "Ferr1sWheel!"),
 ("Onboarding checklist * laptop issued * email set up * temp pass: Welcome2Acme!x7 * badge pending", "Welcome2Acme!x7"),
 ("Incident log 02:10 - restored db access; mysql user reports, pw now Tz9!wq4Rb, root cause still unknown.", "Tz9!wq4Rb"),
 ("Wiki draft: Grafana login admin/ pw: ohmygraphs55 (change later!!)", "ohmygraphs55"),
 ("call notes w/ Lena: camera NVR -> user admin, passwd Lumen8ocean, firmware is outdated", "Lumen8ocean"),
 ("Server | Account | Password\nbackup-02 | svc_bkp | Kq7#mPz2Lx\nall other rows pending", "Kq7#mPz2Lx"),
])

add("shell_and_config_unquoted", [
 ("Add this line to your .env file and restart: DB_PASSWORD=Wxv82!pLmq", "Wxv82!pLmq"),
 ("You can connect with mysql -u reporter -pR3p0rt!ng2023 -h 10.0.4.12, note there's no space after -p.", "R3p0rt!ng2023"),
 ("In the [mail] section of settings.ini I put smtp_password = hollowpine93 and it started sending again.", "hollowpine93"),
 ("Run the backup script as ./backup.sh --user archive --password Fj3k9Lq2zX and check the log afterwards.", "Fj3k9Lq2zX"),
 ("I exported it in my shell with export ADMIN_PASS=Clover!Storm77 before running the migration.", "Clover!Storm77"),
 ("The config on the box reads REDIS_AUTH=4f9dk2msl0qp8x7r, which is why the cache rejected the new client.", "4f9dk2msl0qp8x7r"),
 ("Try lftp -u upload,Skyl4rk#88 ftp.internal and see if the transfer goes through.", "Skyl4rk#88"),
 ("For the container, set POSTGRES_PASSWORD=velvetmoth and map port 5432, then docker compose up.", "velvetmoth"),
 ("The cron job calls sync-tool -p Gh7&nM2kw -u sync, which is how I found the password in plain text.", "Gh7&nM2kw"),
 ("Your my.cnf should have a [client] block with user=backup and password=Orca_Pod_1987 so the dump runs unattended.", "Orca_Pod_1987"),
 ("I ran sshpass -p Tundra55wolf ssh deploy@build01 to test it, which worked fine.", "Tundra55wolf"),
 ("Put MAIL_PASS=zq8rT4vLk1 in the environment of the worker, not in the repo.", "zq8rT4vLk1"),
 ("On the old host the wp-config had DB_PASSWORD=Wordpr3ss!Blues without quotes, which PHP complained about.", "Wordpr3ss!Blues"),
 ("Then do: psql -h db.local -U app and when prompted enter Qm4$hv9Tz, or set PGPASSWORD=Qm4$hv9Tz beforehand.", "Qm4$hv9Tz"),
 ("In the service unit file we have Environment=API_SECRET=b7c1e09af3d24e6a, which I'd move to a credentials file.", "b7c1e09af3d24e6a"),
])

add("reasoning_trace", [
 ("The user said their password is Magnolia!1984, so I should not repeat it back and should suggest they change it since it was shared in chat.", "Magnolia!1984"),
 ("Okay, the user gave me the router admin password, k2Bv7nQx, and asks why login fails. I should check whether caps lock or the username is the issue first.", "k2Bv7nQx"),
 ("They pasted the database password Ps3ud0_Random&7 into the question. I need to answer the connection issue but also warn them to rotate it.", "Ps3ud0_Random&7"),
 ("Let me think. The user's token is 9fd2ak4mz7qw1ex8 and the API returns 401, so maybe the token is expired or scoped wrong.", "9fd2ak4mz7qw1ex8"),
 ("The user mentions the Wi-Fi password is sandcastle2020 and devices keep dropping. The password is probably fine; I should look at the channel and band settings.", "sandcastle2020"),
 ("Hmm, they typed Hunter7!Green as the password and the site says invalid. Possibly a keyboard layout problem with the exclamation mark.", "Hunter7!Green"),
 ("The user wrote that the SMTP password is Ex4mpl3Mail#22 and emails bounce. I should suggest checking the port and TLS setting rather than the password.", "Ex4mpl3Mail#22"),
 ("First, the user shared that they use rosebud99 for every account. I should recommend a password manager and unique passwords.", "rosebud99"),
 ("So the user's admin password is Qz!8vLm3Np and they want me to log in for them. I can't do that, but I can walk them through the steps.", "Qz!8vLm3Np"),
 ("The user says the recovery code they were given is 4827-9153-6604 and it was rejected. I should explain that each recovery code can only be used once.", "4827-9153-6604"),
 ("Reading the message again: their FTP password is Dolphin$Reef5, the server refuses passive mode. The issue is the firewall, not authentication.", "Dolphin$Reef5"),
 ("They included the session token tk_x83Lm0Qa92ZvB7 in the log they pasted. I should point out that anyone with that log could hijack the session.", "tk_x83Lm0Qa92ZvB7"),
 ("The user told me the vault master password is Orchid-Tangent-Lamp-41. I must not store or repeat it, just explain how to enable the emergency kit.", "Orchid-Tangent-Lamp-41"),
 ("Given the user said the password was changed to W1nter!sComing_ and now the sync client fails, the client likely cached the old credential.", "W1nter!sComing_"),
 ("The user claims their PIN-protected admin password is 77Falcon77 and the device locks after three tries. I'll suggest waiting for the lockout timer.", "77Falcon77"),
])

add("multilingual", [
 ("La contraseña del wifi de la oficina es Girasol2024! y la cambiamos cada trimestre.", "Girasol2024!"),
 ("Le mot de passe administrateur du serveur est Brioche#77Lune, merci de ne pas le diffuser.", "Brioche#77Lune"),
 ("Das Passwort für den FTP-Zugang lautet Wald3insamkeit, bitte bis Freitag ändern.", "Wald3insamkeit"),
 ("A senha do banco de dados é Cajueiro!58, use com o usuário relatorios.", "Cajueiro!58"),
 ("La password dell'account amministratore è Gondola_Venezia9, l'ho appena reimpostata.", "Gondola_Venezia9"),
 ("Het wachtwoord van de router is Tulpenveld88 en de gebruikersnaam is admin.", "Tulpenveld88"),
 ("Hola Marta, te paso el acceso: usuario soporte, clave Xk9!mT4pq, entra y revisa los tickets.", "Xk9!mT4pq"),
 ("J'ai réinitialisé ton compte, ton nouveau mot de passe est framboise42, change-le dès ta première connexion.", "framboise42"),
 ("Kannst du dich mit dem Kennwort Rh3in!Ufer2023 am Dashboard anmelden? Bei mir klappt es.", "Rh3in!Ufer2023"),
 ("Para entrar no painel use a senha qw7zLp2mRx, depois eu troco.", "qw7zLp2mRx"),
 ("Il codice di accesso al gestionale è Pizz4Marg!ta, valido fino a lunedì.", "Pizz4Marg!ta"),
 ("Ik heb het SMTP-wachtwoord gewijzigd naar Fiets#Regen21, pas het aan in de mailclient.", "Fiets#Regen21"),
 ("Nota de la reunión: la contraseña del servidor de pruebas ahora es mariposa_azul7.", "mariposa_azul7"),
 ("Le token de session est zr81kdm3qp0vtx56, il expire ce soir.", "zr81kdm3qp0vtx56"),
 ("Die Wiederherstellungscodes sind verloren, aber der Notfallcode 5182-7740-3391 funktioniert noch für das Admin-Konto.", "5182-7740-3391"),
])

add("passphrases_and_wifi", [
 ("The guest Wi-Fi key is now lemon-harbor-violin-63, the old one stopped working this morning.", "lemon-harbor-violin-63"),
 ("Network: CafeNorth, WPA2 key: b3anst4lk2go, ask staff if it changes.", "b3anst4lk2go"),
 ("My vault master password is correct horse staple battery purple, which I know is long but easy to remember.", "correct horse staple battery purple"),
 ("For the office Wi-Fi use the passphrase Seven!Gulls@Noon and connect to the 5 GHz band.", "Seven!Gulls@Noon"),
 ("The WPA key for the warehouse access point is Kw83nd92Lq0z; it's printed nowhere else.", "Kw83nd92Lq0z"),
 ("I set the KeePass master passphrase to granite tulip oxygen marble so I won't lose it again.", "granite tulip oxygen marble"),
 ("Home Wi-Fi: SSID is TheBurrow, key is weasleysrule4ever.", "weasleysrule4ever"),
 ("The BitLocker-style disk passphrase we chose is Amber.Quartz.Violet.2022 and it's needed at boot.", "Amber.Quartz.Violet.2022"),
 ("Guests can join the conference network with the key Innovate2025Summit for the duration of the event.", "Innovate2025Summit"),
 ("Our 1Password master password is Tidal~Wren~Oven~88, only the two founders know it.", "Tidal~Wren~Oven~88"),
 ("The hotspot on my phone has the key purplemonkeydishwasher, connect the laptop to it.", "purplemonkeydishwasher"),
 ("Encryption passphrase for the backup archive: silent river beneath copper sky.", "silent river beneath copper sky"),
 ("Living room extender uses the same Wi-Fi key as the main router: Zephyr#4421home.", "Zephyr#4421home"),
 ("The GPG key passphrase is ottoman-ginger-lantern, you will need it to sign the release.", "ottoman-ginger-lantern"),
 ("If the lab's wireless asks for a key, type qQ7vN2xR8mL4pW and it should connect right away.", "qQ7vN2xR8mL4pW"),
])

add("tokens_and_codes", [
 ("The API token for the internal metrics service is 7b3e9f0a21d84c6e9a57f2b1c0d8e4a3, keep it out of tickets.", "7b3e9f0a21d84c6e9a57f2b1c0d8e4a3"),
 ("Here are my backup codes in case I lose the phone: 3918 4402, and I already used the others.", "3918 4402"),
 ("The session token in the cookie was Xq9Lm2Vt8Rz4Kp1Nw6Bs, which is how the attacker stayed logged in.", "Xq9Lm2Vt8Rz4Kp1Nw6Bs"),
 ("Use the bearer token mQ4xT8zL2vR9nK6pW1sJ when calling the reporting endpoint.", "mQ4xT8zL2vR9nK6pW1sJ"),
 ("My account recovery code is HQ7T-M2XP-9KRL-4DNV, stored only in this message for now.", "HQ7T-M2XP-9KRL-4DNV"),
 ("The webhook signing secret is whsig9d83kf02mzp71qa and it needs to match on both sides.", "whsig9d83kf02mzp71qa"),
 ("Support gave me a one-time access token, a8f3k29dm4x7, to unlock the dashboard.", "a8f3k29dm4x7"),
 ("The partner's API key is q0x7Fb3LkZ91mRvT2sNe, they sent it in a plain email.", "q0x7Fb3LkZ91mRvT2sNe"),
 ("The 2FA backup code you should use next is 72914038.", "72914038"),
 ("Our integration token for the CRM is ZpK4-8mWq-Lr2T-vN9e and it has full write access.", "ZpK4-8mWq-Lr2T-vN9e"),
 ("The refresh token returned was 4c9a1e7f0b2d8e3f6a5c and it never seemed to expire.", "4c9a1e7f0b2d8e3f6a5c"),
 ("Recovery codes for the admin account: yh6d-2kqp is the only one left unused.", "yh6d-2kqp"),
 ("The app's client secret is Rt8vNq2XzL0mKb5Wy3Hc, so anyone with this repo could impersonate it.", "Rt8vNq2XzL0mKb5Wy3Hc"),
 ("I copied the access token from the browser devtools: e83kf0qz7mxl2wv9pa1d.", "e83kf0qz7mxl2wv9pa1d"),
 ("The shared secret for the RADIUS server is TqRmVbLkZsWx, which is letters only and far too weak.", "TqRmVbLkZsWx"),
])

add("indirect", [
 ("Use Brambleberry!3 to log in as the admin user on the staging site.", "Brambleberry!3"),
 ("The code for the admin panel is 90417725, it doesn't expire.", "90417725"),
 ("kP3nW8zq should get you into the router; the username is just admin.", "kP3nW8zq"),
 ("If the laptop asks when it boots, type in Orbit_Lemon_19 and you're in.", "Orbit_Lemon_19"),
 ("When the NAS prompts you, Haystack#2231 will unlock it.", "Haystack#2231"),
 ("To get into the shared mailbox, sign in as reception and enter sunnyvalley8 at the prompt.", "sunnyvalley8"),
 ("The old server still accepts Qbert1983! for root, which is honestly scary.", "Qbert1983!"),
 ("Whatever you do, don't lose this: V7x!cQ2m is the only thing that gets us into the payroll system.", "V7x!cQ2m"),
 ("The master login on the alarm panel's web UI takes Sentinel!Gate6, the installer set it that way.", "Sentinel!Gate6"),
 ("Mira's laptop unlocks with tigerlily22, she said it's fine to use it today.", "tigerlily22"),
 ("For the HR portal, the trick is to type Onb0arding&Go when it asks for your secret.", "Onb0arding&Go"),
 ("Log into the camera dashboard with ops and Lx8vR2qN; that's what worked for me.", "Lx8vR2qN"),
 ("The thing you type after ssh asks for it is dr4gonfruit9.", "dr4gonfruit9"),
 ("Entering Kettle&Crumpet5 at the console prompt gives you the full admin shell.", "Kettle&Crumpet5"),
 ("The credentials on the sticky note were build and Zq2#nv7Tp, and they still work on the CI server.", "Zq2#nv7Tp"),
])
