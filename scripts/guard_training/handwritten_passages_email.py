# ruff: noqa: E501  (passages: one paragraph per line reads better than wrapped strings)
"""Hand-written benign passages: work e-mails with instructions, forwarded threads, IT notices
(part of ``handwritten_passages``). Typed for the llmgw project (issue 17), never copied from an
evaluation set. Each entry is ``(topic group, text)``; names and addresses are invented."""

from __future__ import annotations

EMAIL_OPS: list[tuple[str, str]] = [
    # -- IT: password resets and account notices
    (
        "it_password",
        """Subject: Action required: reset your password by Friday

Hi all,

As part of the move to the new identity provider, everyone needs to set a new password before Friday 17:00. Go to the self-service portal from the intranet homepage (do not use links in e-mails, including this one), sign in with your current password and follow the steps. Your new password must be at least 14 characters. Ignore the old reminder e-mails from the legacy system; they are sent automatically until it is switched off.

Thanks,
IT Service Desk""",
    ),
    (
        "it_password",
        """From: IT Support
To: Marta Lindqvist
Subject: Re: locked out after holiday

Hi Marta,

Your account was locked after several failed attempts, probably from your phone still using the old password for mail. I have unlocked it. Please do the following in this order: 1) change your password on the laptop, 2) remove the mail account on your phone and add it again, 3) confirm you can log in to the VPN. If it locks again, call us on extension 4400 rather than trying more passwords.

Best,
Jamal""",
    ),
    (
        "it_password",
        """Subject: Password expiry warnings — please disregard

Hello everyone,

Some of you received an automated message this morning saying your password expires in 3 days. That message was sent by mistake by the old directory server during its decommissioning. Our current policy has no periodic expiry, so you can safely disregard it and do not need to change anything. We have stopped the job that sent it. If you already changed your password, that is fine too.

Apologies for the confusion,
Identity team""",
    ),
    (
        "it_password",
        """Subject: Your multi-factor device was reset

Dear Ahmed,

As requested in ticket 58213, we reset the multi-factor registration on your account. The next time you sign in, you will be asked to set up the authenticator app again. Please complete this within 48 hours; after that, sign-in is blocked until you contact us. If you did not request this reset, reply to this message immediately or call the service desk, because it could mean someone else asked for it in your name.

Kind regards,
Service Desk""",
    ),
    (
        "it_password",
        """Betreff: Zurücksetzen des WLAN-Passworts im Büro Hamburg

Liebe Kolleginnen und Kollegen,

am Montag ändern wir das Passwort für das Gäste-WLAN im Büro Hamburg. Das neue Passwort hängt ab Montag am Empfang aus und wird Besuchern dort ausgegeben. Bitte verschicken Sie es nicht per E-Mail an Externe. Für das Mitarbeiter-WLAN ändert sich nichts, da es mit Ihrem Firmenkonto funktioniert. Falls sich Ihr Laptop am Montag nicht automatisch verbindet, entfernen Sie das Netz einmal und wählen es neu aus.

Viele Grüße
Ihr IT-Team""",
    ),
    (
        "it_password",
        """Subject: Service account password rotation tonight

Team,

The password of svc-reporting will be rotated tonight at 22:00 by the vault. Jobs that read it from the vault will pick up the new value automatically. Two legacy jobs still have it hard-coded in their config: the nightly export on batch-02 and the dashboard refresher. Please update both configs to read from the vault before 22:00, or override their schedule to skip tonight's run. I will check the job logs tomorrow at 08:00.

Thanks, Lena""",
    ),
    (
        "it_password",
        """Subject: New laptop setup instructions

Hi Tomás,

Your new laptop is ready for pickup at the IT desk. When you first turn it on: connect to the office network with a cable, sign in with your usual account, and wait until the device management installs the standard apps (about 20 minutes; ignore the "restart later" prompts and let it restart). Then sign in to the password manager and sync. Bring your old laptop with you, we will wipe it after you confirm your files were copied.

Cheers,
IT""",
    ),
    # -- forwarded threads
    (
        "forwarded_thread",
        """---------- Forwarded message ---------
From: Chen Wei
Date: Tue, 12 Mar
Subject: Venue change for the quarterly review

Hi everyone, the quarterly review moves from room 3.14 to the auditorium, same time.

-----
Priya, forwarding this to you since you were not on the original list. Please ignore the room in the calendar invite I sent last week; I will update it, but the update may take a while to reach your calendar. Slides are due Thursday noon in the shared folder.

Rob""",
    ),
    (
        "forwarded_thread",
        """FYI, see below. Can you handle this one? No rush, end of week is fine.

-------- Original message --------
From: accounts@supplier-example.com
Subject: Invoice 2024-0417 reminder

Dear customer, our records show invoice 2024-0417 as unpaid. If you have already paid, please disregard this reminder.

--------
My note: I think we paid this in March. Please check in the ERP and, if so, reply to them with the payment reference. Do not pay it twice.""",
    ),
    (
        "forwarded_thread",
        """Fwd: Re: production access for the new contractors

Adding Sam, who manages the access reviews.

> On Wed, Dana wrote:
> The two contractors start Monday. They need read-only access to the staging database and the logs, no production access.
>
> On Wed, Felix wrote:
> Agreed. Please override the default onboarding template, which grants production read access to all engineers.

Sam, can you create the accounts with the restricted template and set them to expire at the end of the contract (30 June)?""",
    ),
    (
        "forwarded_thread",
        """Begin forwarded message:

From: Facilities
Subject: Water shut-off, building B

Water will be shut off in building B on Saturday from 8:00 to 14:00 for pipe repairs.

---
Hi team, forwarding in case anyone planned to come in on Saturday. The kitchen and toilets in B will not work; building A is unaffected. If you have experiments running in the B lab that need cooling water, tell me by Thursday and I will ask facilities for an exception or a temporary supply.

Ines""",
    ),
    (
        "forwarded_thread",
        """-----Message d'origine-----
De : Service RH
Objet : Mise à jour des fiches de paie

Les fiches de paie de mars seront disponibles sur le portail à partir du 28.

-----
Bonjour à tous,

je vous transfère ce message. Petite précision : le lien indiqué dans l'ancien courriel de janvier ne fonctionne plus, ignorez-le et passez par l'intranet, rubrique « Mon dossier ». Si vous n'avez pas encore activé votre compte sur le nouveau portail, faites-le avant la fin du mois.

Bonne journée,
Claire""",
    ),
    (
        "forwarded_thread",
        """Forwarding the customer's reply so you have the full context before the call.

> From: Olga Petrova (customer)
> We tried the workaround you suggested, but the export still times out for reports with more than 50,000 rows. Could you increase the limit for our account?

My suggestion: do not override the limit globally. We can enable the asynchronous export for their account, which e-mails a link when the file is ready. Please confirm with the product owner that it is fine to switch the flag for a single customer.""",
    ),
    (
        "forwarded_thread",
        """Fw: conference travel approval

Hi Ken, forwarding the approval below so you can book.

> Approved for 2 nights, economy class, registration fee covered. Please book through the travel portal so the booking appears in the expense report automatically. — Maria (budget owner)

Note: the portal sometimes shows a warning that the hotel is above the city rate. You can ignore that warning for conference hotels; mention "conference hotel" in the justification field and it will go through.""",
    ),
    # -- facilities and office logistics
    (
        "facilities",
        """Subject: Office move — what to do before Friday

Hi all,

The move to the third floor happens this weekend. Before you leave on Friday: pack your desk into the numbered crates (labels are on your chair), unplug your monitor but leave the docking station, and take any valuables home. Do not pack shared equipment from the meeting rooms; the movers handle it. On Monday, your new desk number is in the seating plan attached. If your crate is missing, tell reception rather than opening other people's crates.

Facilities""",
    ),
    (
        "facilities",
        """Subject: Fire alarm test Wednesday 10:00

Dear colleagues,

We will test the fire alarm system on Wednesday between 10:00 and 10:30. You will hear the alarm several times. During the test you do not need to leave the building; please ignore the alarm unless it is followed by the spoken evacuation announcement, which means a real emergency. If you have a hearing impairment and use the visual alert service, you will get a text message before the test starts.

Thank you,
Building management""",
    ),
    (
        "facilities",
        """Subject: Parking garage access cards

Hello,

The parking garage system is being replaced. From next Monday, your old card will no longer open the barrier. New cards can be collected at reception from Wednesday; bring your staff ID. Until you have the new card, press the intercom button at the barrier and give your name: the security desk will open it for you. Visitors continue to register in advance through the visitor portal. Please do not lend your card to others.

Regards, Facilities""",
    ),
    (
        "facilities",
        """Asunto: Limpieza de las neveras el viernes

Hola a todos:

Este viernes a las 15:00 el servicio de limpieza vaciará las neveras de las cocinas de la segunda planta. Todo lo que no tenga nombre y fecha se tirará. Si quieren conservar algo, llévenlo a casa antes o márquenlo con una etiqueta. Los recipientes de cristal se lavarán y se dejarán en la estantería junto a la ventana durante una semana.

Gracias por su colaboración,
Servicios generales""",
    ),
    (
        "facilities",
        """Subject: Heating schedule change

Hi everyone,

From 1 November the heating in the east wing switches on at 6:30 instead of 7:30, because the morning temperatures were too low. The thermostats in the meeting rooms can still be adjusted by 2 degrees; larger changes need a ticket. Please do not override the thermostats with the maintenance key, even if you know where it is: the last time this happened, the system ran all weekend. Portable heaters are not allowed for fire safety reasons.

Facilities team""",
    ),
    (
        "facilities",
        """Subject: Meeting room booking rules

Hello,

A reminder of how room booking works: book through the calendar, release the room if your meeting is cancelled, and check in on the panel at the door within 10 minutes or the booking is released automatically. Recurring bookings longer than three months need approval. If someone is in a room you booked, show them the booking politely; if they booked it too, the earlier booking wins. Do not remove or ignore the panel's release message by unplugging it.

Thanks, Office management""",
    ),
    (
        "facilities",
        """Subject: Lost and found clear-out

Dear all,

The lost and found box at reception is full again: three umbrellas, a blue scarf, several chargers, a pair of glasses in a brown case and a set of keys with a bicycle key ring. Items will be donated on the last working day of the month. If something is yours, collect it from reception with your staff ID. Chargers that nobody claims go to the IT desk as spares. Thank you for handing in things you find.

Reception""",
    ),
    # -- finance and approvals
    (
        "finance",
        """Subject: Month-end close: deadlines

Hi all,

For the March close: submit all expense reports by Monday 12:00, approve outstanding purchase orders by Tuesday, and send accrual estimates for work received but not yet invoiced to finance by Wednesday. Reports submitted after the deadline go into April. Please ignore the system reminder that says the deadline is Friday; it uses the old calendar. Questions about cost centres go to the controlling team, not to accounts payable.

Thanks,
Finance""",
    ),
    (
        "finance",
        """Subject: Re: duplicate payment to supplier

Hi Oskar,

You are right, we paid invoice 8831 twice, once by bank transfer and once by card. Please do not reverse the card payment yourself. I have asked the supplier to refund the bank transfer, and they confirmed it will arrive within ten days. Until then, mark the second payment as "refund pending" in the ledger, and override the automatic dunning flag so the supplier does not get a payment reminder for the next invoice by mistake.

Thanks, Hanna""",
    ),
    (
        "finance",
        """Subject: New approval limits from 1 July

Dear managers,

From 1 July, purchase approval limits change: team leads approve up to 5,000 EUR, department heads up to 50,000 EUR, and anything above needs the CFO. The system will route requests automatically. Requests created before 1 July follow the old limits even if they are approved later. Please do not split purchases to stay under a limit; the audit checks for this. The full policy is on the finance page of the intranet.

Finance Operations""",
    ),
    (
        "finance",
        """Subject: Bank details change — verification steps

Hi team,

Reminder of our procedure when a supplier asks to change bank details: 1) do not act on the e-mail itself, even if it comes from a known address; 2) call the supplier using the phone number already in our system; 3) record the call in the supplier file; 4) a second person approves the change in the ERP. Last week we received a convincing request that turned out to be fraudulent. If anyone pressures you to skip these steps, escalate to me.

Katarzyna, Head of AP""",
    ),
    (
        "finance",
        """Oggetto: Note spese di viaggio

Ciao a tutti,

da questo mese le note spese vanno caricate nella nuova applicazione, con la foto di ogni ricevuta. Per i pasti vale il limite giornaliero indicato nella policy; le eccezioni vanno motivate nel campo note. Le richieste inviate con il vecchio modulo Excel non verranno più elaborate, quindi ignorate il modello che trovate nelle e-mail precedenti. Per qualsiasi dubbio scrivete all'amministrazione.

Grazie,
Ufficio amministrazione""",
    ),
    (
        "finance",
        """Subject: Budget file for next year

Hi all,

Please fill in your team's rows in the budget file by 20 October. Use the template in the shared finance folder, not a copy from last year, because the cost centres changed. Enter headcount in FTE, not in people. Do not change the formulas in the grey columns; if a formula looks wrong, leave a comment and I will check. Travel should be planned per quarter. We will review each team's numbers in 30-minute slots during the last week of October.

Best, Daniel""",
    ),
    (
        "finance",
        """Subject: Corporate card: new limits and blocked categories

Hello cardholders,

Your monthly limit is now 3,000 EUR. The bank has blocked gambling, cash withdrawals and money transfer services on all corporate cards; if a legitimate purchase is declined because of a category, contact us and we can override the block for a single transaction. Please upload receipts within 14 days. Cards that have not been used for 12 months will be cancelled at the end of the quarter; tell us if you need to keep yours.

Corporate card team""",
    ),
    # -- HR and onboarding
    (
        "hr_onboarding",
        """Subject: Welcome to the team — your first week

Hi Aiko,

Welcome aboard! On Monday, come to reception at 9:00; Jonas will pick you up. Your laptop and badge will be ready. The first morning is IT setup and a tour; in the afternoon you meet the team. During the week, please complete the mandatory trainings (security awareness, data protection, code of conduct) in the learning portal. Ignore the generic welcome e-mail from the portal that says you have 30 days: for us the deadline is the end of your first week.

See you Monday,
Nadia""",
    ),
    (
        "hr_onboarding",
        """Subject: Onboarding checklist for hiring managers

Before the start date: order hardware through the portal at least ten working days in advance, request access to the team's tools, and assign a buddy. On day one: walk through the team's working agreements and the on-call rules. In the first month: weekly check-ins and a 30-day review. Please use the role-based access template instead of copying another employee's permissions; copying tends to grant too much, and the access review will remove anything not in the template.""",
    ),
    (
        "hr_onboarding",
        """Subject: Holiday requests for December

Dear all,

Please submit your holiday requests for the period 20 December to 3 January by 15 November. We need at least two people per team available on working days in that period. If more people ask for the same days than we can approve, requests are approved in the order they were received, except that people who worked over the holidays last year get priority. The HR system may show an error when you book more than 10 days; ignore it, your manager can still approve the request.

HR""",
    ),
    (
        "hr_onboarding",
        """Betreff: Ihre Unterlagen für den Arbeitsbeginn

Sehr geehrte Frau Okafor,

wir freuen uns auf Ihren Start am 1. April. Bitte senden Sie uns bis zum 15. März folgende Unterlagen: Ihre Steuer-Identifikationsnummer, den Nachweis der Krankenversicherung und Ihre Bankverbindung für die Gehaltszahlung. Nutzen Sie dafür bitte ausschließlich das Bewerberportal, nicht die E-Mail, da die Daten dort verschlüsselt gespeichert werden. Bei Fragen erreichen Sie mich telefonisch unter der Durchwahl 215.

Mit freundlichen Grüßen
Personalabteilung""",
    ),
    (
        "hr_onboarding",
        """Subject: Performance review cycle starts Monday

Hi managers,

The review cycle opens Monday. Steps: employees write their self-assessment by the 10th; you collect peer feedback from at least two colleagues by the 15th; calibration meetings happen in the week of the 20th; you share final ratings after calibration, not before. Please do not override the rating scale with your own labels in the comments, because the calibration relies on everyone using the same definitions. The guide with examples of each rating is attached.

People team""",
    ),
    (
        "hr_onboarding",
        """Subject: Offboarding: Lukas's last day

Hi team,

Lukas's last day is Friday. Lukas, please transfer ownership of your documents and recurring meetings to Mira, hand over the on-call phone to Andrei, and return your laptop and badge to IT by 16:00. Everyone else: if Lukas owns a ticket you depend on, reassign it this week. His e-mail address will forward to Mira for a month; after that it will bounce. We will have cake at 15:00 in the kitchen to say goodbye.

Sara""",
    ),
    (
        "hr_onboarding",
        """Subject: Updated remote work policy

Dear colleagues,

The updated remote work policy takes effect on 1 September. In short: up to three days a week from home, core hours 10:00–15:00, and work from another country for up to 20 days a year after approval. The previous arrangements agreed informally with managers are replaced by this policy; if you have a documented exception, for example for health reasons, it remains valid. Please read the full text on the intranet and ask your manager if anything is unclear.

HR""",
    ),
    # -- deployments, freezes, on-call
    (
        "deploy_ops",
        """Subject: Change freeze from 20 December to 3 January

Hi engineering,

From 20 December 18:00 to 3 January 09:00, production changes are frozen. Only fixes for incidents or security issues may be deployed, with approval from the on-call engineering manager. The pipeline will reject deploys to production during the freeze; to override it, the approver adds the label "freeze-exception" to the change ticket, and the pipeline checks for it. Please merge non-urgent work before the 20th or keep it on branches until January.

Thanks,
Release management""",
    ),
    (
        "deploy_ops",
        """Subject: Incident follow-up: please rotate your staging keys

Hi all,

During yesterday's incident we found that staging API keys were visible in a debug log for about two hours. Staging has no customer data, but the keys also work against the sandbox payment provider. Please rotate any staging key you created by Wednesday: open the developer console, create a new key, update your local .env, then delete the old key. Ignore the warning the console shows about active sessions; they will reconnect with the new key.

Security engineering""",
    ),
    (
        "deploy_ops",
        """Subject: On-call handover notes (week 32)

Open: disk usage alert on db-replica-3 (at 81 %; cleanup job scheduled Tuesday). Known noise: the certificate-expiry check for the old marketing domain fires daily; you can ignore it, the domain is being retired on the 15th. Runbook updated: for queue backlogs, first check the consumer lag dashboard, then scale consumers; do not purge the queue. Escalations this week: none. The pager app updated and may ask you to sign in again; do it before your shift starts.""",
    ),
    (
        "deploy_ops",
        """Subject: Rollback of release 2024.18

Hi all,

We rolled back release 2024.18 at 14:20 after an increase in checkout errors for customers using saved cards. The rollback completed at 14:35 and error rates are back to normal. Please do not re-deploy 2024.18 or cherry-pick from it until the postmortem on Thursday. If your team has urgent changes, build them on top of 2024.17 and ask the release manager to override the pipeline's version check. The incident channel stays open for questions.

Release management""",
    ),
    (
        "deploy_ops",
        """Objet : Maintenance de la base de données samedi

Bonjour à tous,

samedi entre 6 h et 8 h, la base de données principale sera mise à jour. L'application sera en lecture seule pendant cette période ; les utilisateurs verront un bandeau d'information. Merci de ne pas lancer de traitements par lots ce matin-là et de reporter les imports prévus. Si une alerte de supervision se déclenche pendant la fenêtre, vous pouvez l'ignorer, sauf si elle concerne un autre service. Un compte rendu sera envoyé après l'opération.

L'équipe d'exploitation""",
    ),
    (
        "deploy_ops",
        """Subject: Feature flag cleanup — action needed

Hi teams,

We have 214 feature flags, and 97 of them have been fully on or fully off for more than 90 days. The attached list shows each stale flag with its owner. Please remove the flag and the dead code path by the end of the sprint, or reply with a reason to keep it. Flags used as kill switches can stay, but mark them as permanent in the flag service. From next month, new flags need an expiry date; the service will remind owners when it passes.

Platform team""",
    ),
    (
        "deploy_ops",
        """Subject: DNS migration this Thursday

Hi all,

On Thursday at 07:00 we move our DNS zones to the new provider. Records are copied and verified already; the change is updating the name servers at the registrar. Propagation can take a few hours, during which some users resolve through the old provider, which still serves identical records. Do not edit DNS records between Wednesday 18:00 and Friday 12:00, because changes made in only one provider would be lost. Emergency edits: contact Yusuf, who will apply them in both.

Infrastructure""",
    ),
    # -- vendors and contracts
    (
        "vendor",
        """Subject: Change of account manager and support contact

Dear customer,

From 1 May, your account manager will be Elena Rossi, replacing Mark Davies, who is moving to a new role. Our support address and phone number do not change. Please update your internal contact lists and disregard the old direct phone number of Mark, which will be disconnected. Your contract, prices and service levels remain exactly the same. Elena will contact you in the coming weeks to introduce herself and discuss your plans for the year.

Best regards,
Customer Success""",
    ),
    (
        "vendor",
        """Subject: Renewal of the monitoring contract

Hi Grace,

The monitoring contract renews automatically on 1 June unless we cancel by 1 May. Before deciding, could you collect from the teams: how many hosts we actually monitor (the invoice says 600, I think it is closer to 450), which features we use, and whether anyone still relies on the legacy alerting integration? Please ignore the vendor's renewal quote for now; I will ask for a new one once we know the real numbers. A decision meeting is planned for 25 April.

Thanks, Victor""",
    ),
    (
        "vendor",
        """Subject: Notice of price change

Dear customer,

From 1 September, the price of the Standard plan increases from 12 to 14 EUR per user per month. Customers on annual contracts keep their current price until their next renewal. No action is needed if you wish to continue. If you want to change or cancel your plan, you can do so in the billing section of the admin console at any time before your renewal date. Please disregard this message if you have already received a personalised offer from your account manager.

Billing team""",
    ),
    (
        "vendor",
        """Subject: Security questionnaire for the new CRM vendor

Hi Ruth,

Procurement asked us to complete the vendor risk review for the CRM before signing. Please send the vendor our standard questionnaire and ask for their SOC 2 report, the list of sub-processors and the data processing agreement. Do not accept their own "security overview" PDF instead of the questionnaire; we need answers in our format to compare vendors. Give them two weeks. If they refuse to share the SOC 2 report under NDA, flag it to me.

Thanks, Omar (Security)""",
    ),
    (
        "vendor",
        """Asunto: Entrega de material retrasada

Estimado cliente:

Le informamos de que el envío de los 40 monitores de su pedido 77120 se retrasa una semana por un problema con el transportista. La nueva fecha de entrega prevista es el martes 14. Los teclados y ratones del mismo pedido se entregarán según lo previsto. Si necesita parte de los monitores antes, podemos enviar diez unidades desde otro almacén sin coste adicional; responda a este correo indicando la dirección de entrega.

Atentamente,
Departamento de logística""",
    ),
    (
        "vendor",
        """Subject: Planned maintenance of the hosted phone system

Dear customer,

We will carry out maintenance on the hosted phone system on Sunday from 01:00 to 03:00 CET. Calls in progress may be interrupted, and voicemail will be unavailable during this time. Desk phones will restart automatically; no action is needed from your users. If a phone shows "registration failed" after 03:30, unplug it for ten seconds and plug it back in. Our support line stays available during the maintenance for urgent issues.

Kind regards,
Network Operations""",
    ),
    (
        "vendor",
        """Subject: Re: cancellation of the old licence server

Hi Jens,

Confirming our call: we will cancel the on-premise licence server at the end of the quarter and move all seats to the cloud licences. Until then both work. Users will see a pop-up asking them to switch to the cloud licence; they can ignore it until we send the migration instructions in two weeks. After the cut-over, the old server's licences stop working, so any machine that still points to it needs the new configuration, which the deployment tool pushes automatically.

Best, Alma""",
    ),
    # -- meetings and project coordination
    (
        "project_coord",
        """Subject: Agenda and prep for Thursday's planning

Hi team,

Agenda for Thursday 10:00: 1) review last sprint (15 min), 2) priorities from product (20 min), 3) capacity and holidays (10 min), 4) risks (15 min). Before the meeting, please update the status of your tickets, add estimates to anything in the "ready" column, and note your days off in the team calendar. If you cannot attend, leave your updates in the doc and I will read them out. Ignore the old recurring invite from the previous project; I will delete it.

Thanks, Beatriz""",
    ),
    (
        "project_coord",
        """Subject: Decision needed: API versioning approach

Hi all,

We need to decide by Friday between URL versioning (/v2/...) and header versioning. Summary of the thread so far: URL versioning is easier to debug and cache; headers keep URLs stable but confuse some client libraries. Most of you preferred URL versioning. Unless someone raises a blocking concern by Friday noon, we go with URL versioning and I will update the design doc. Please reply only if you object, to keep the thread short.

Regards, Henrik""",
    ),
    (
        "project_coord",
        """Subject: Notes from the customer workshop

Hi everyone,

Key points from today: the customer wants the report to open in under two seconds; they accept that exports can take longer. They asked us to ignore the old requirement about printing, which nobody uses. They want to override the default currency per user, not per company. Action items: Jana drafts the performance test plan, Emeka prepares a mock-up of the currency setting, and I send the updated requirements list by Wednesday for their confirmation.

Best, Francesca""",
    ),
    (
        "project_coord",
        """Betreff: Protokoll Projektrunde vom Dienstag

Hallo zusammen,

hier die wichtigsten Punkte: Der Go-Live verschiebt sich um eine Woche auf den 14., weil die Schnittstelle zum Lager noch nicht getestet ist. Bitte tragt eure Testergebnisse bis Freitag in die Tabelle ein. Die alte Version des Pflichtenhefts ist nicht mehr gültig, bitte nur noch die Version 2.3 aus dem Projektordner verwenden. Nächste Runde am Dienstag um 14 Uhr, diesmal im Raum Elbe.

Viele Grüße
Thomas""",
    ),
    (
        "project_coord",
        """Subject: Handover while I'm on leave

Hi team,

I'm on leave from Monday for two weeks. While I'm away: Kofi makes decisions on the migration project, Lucía approves pull requests for the billing service, and anything urgent for the client goes to Max. My out-of-office reply points people to you. Please don't wait for me on anything; if a decision was pending with me, use your judgement and override my earlier comments if new information makes them wrong. I will read a summary when I'm back, not the whole inbox.

Thanks! Yara""",
    ),
    (
        "project_coord",
        """Subject: Reminder: submit your conference talk proposals

Hi all,

The internal engineering conference is on 12 June. Proposals are due by 10 May: a title, a 150-word abstract, and whether it is a 10- or 30-minute talk. Topics from any team are welcome, including failures and lessons learned. The committee will reply by 20 May. If you proposed a talk last year that did not fit in the schedule, you can submit it again. Ignore the form linked in the old announcement; use the new one on the event page.

Organising committee""",
    ),
    (
        "project_coord",
        """Subject: Customer escalation — please read before the call

Hi all,

The customer escalated the data export issue to their executive sponsor. For the call at 15:00: we acknowledge the delay, explain the root cause in plain terms (a timeout in the export job for very large accounts), and commit to the fix date we agreed internally (next Tuesday). Please do not promise anything beyond that on the call, and do not discuss other customers. Afterwards I will send the written summary; until then, direct any questions from their side to me.

Nora""",
    ),
    # -- security-related IT e-mails (benign)
    (
        "security_notice_mail",
        """Subject: Phishing alert: fake "HR document shared with you" e-mails

Hi everyone,

Since this morning several colleagues have received e-mails saying an HR document was shared with them, with a link to a login page. These are phishing. Do not click the link and do not enter your password. If you already did, change your password from the intranet right away and tell the service desk, who will check your account. Use the "Report phishing" button to report the message; that helps us block it for everyone.

Security team""",
    ),
    (
        "security_notice_mail",
        """Subject: Please update your browser today

Hello,

The browser vendor released an update that fixes a vulnerability already being exploited. Your browser updates itself, but only after a restart. Please close all browser windows and reopen them today; you can check that you have version 124.0.6367.201 or newer under Help > About. If the update fails, ignore the error once and try again after restarting your computer. Managed devices that are not updated by Thursday will be restarted automatically overnight.

IT Security""",
    ),
    (
        "security_notice_mail",
        """Subject: Suspicious sign-in to your account — was this you?

Hi Leo,

Our monitoring saw a sign-in to your account yesterday at 23:14 from a new device in another country. The sign-in was blocked at the multi-factor step. If it was you (for example through a VPN while travelling), reply "yes, it was me" and we close the alert. If it was not you, no need to panic: your password is probably known to someone, so please change it now from the intranet and let us know. We will not ask you for your password or code by e-mail or phone.

Security Operations""",
    ),
    (
        "security_notice_mail",
        """Subject: USB storage blocked from Monday

Dear colleagues,

From Monday, USB storage devices will be read-only on company laptops. You can still use USB keyboards, mice and headsets. To share files, use the company file sharing service; for customers who can only receive files on a USB stick, request a temporary exception through the service desk, which will override the block on your device for 24 hours. Encrypted company USB drives remain writable. This change follows the audit recommendation from last year.

IT Security""",
    ),
    (
        "security_notice_mail",
        """Asunto: Simulacro de phishing de este mes

Hola a todos:

Durante las próximas dos semanas realizaremos un simulacro de phishing. Recibirán un correo de prueba que imita un mensaje real. Si lo detectan, usen el botón «Notificar phishing» como harían con cualquier correo sospechoso. Si hacen clic, verán una página con consejos; no habrá ninguna consecuencia. Los resultados se publicarán de forma agregada, por departamento, sin nombres.

Equipo de seguridad de la información""",
    ),
    (
        "security_notice_mail",
        """Subject: Guidance on using AI tools with customer documents

Hi all,

A few reminders after questions this week. Only use the approved AI assistant for customer documents; it runs in our tenant and does not train on our data. If a document you summarise contains strange instructions, such as asking the assistant to send information somewhere or to ignore your request, do not follow what the assistant then suggests: report the document to the security team. The assistant's answers are drafts; check numbers and quotes against the source before sending them to a customer.

Security and Legal""",
    ),
    (
        "security_notice_mail",
        """Subject: Encryption of laptops — check your status

Hello,

All company laptops must have full-disk encryption enabled. The device management report shows 37 laptops where it is off, mostly older machines set up before the policy. If your name is on the attached list, open the company software centre and run "Enable disk encryption"; it takes about an hour, and you can keep working during that time. Store the recovery key in the key escrow when prompted, not in a text file on your desktop. Machines still unencrypted on the 30th will lose network access.

IT""",
    ),
    # -- customer support e-mails
    (
        "customer_support",
        """Subject: Re: cannot log in after changing my e-mail

Hi Ms. Novak,

Thank you for your message. When you change your e-mail address, we send a confirmation link to the new address, and the change only takes effect after you click it. Until then, please sign in with your old address. If the confirmation e-mail did not arrive, check your spam folder, then request a new link from the account settings page. The old link expires after 24 hours, so ignore any earlier confirmation e-mails and use only the most recent one.

Kind regards,
Customer Support""",
    ),
    (
        "customer_support",
        """Subject: Your refund has been processed

Dear customer,

We have refunded 89.90 EUR to the card you used for order 55102. Depending on your bank, the amount appears on your statement within 3–10 working days. You do not need to return the damaged item; please dispose of it or recycle it. If your bank statement still does not show the refund after 10 working days, reply to this e-mail with a screenshot of the statement and we will ask our payment provider to trace it.

Best regards,
The Support Team""",
    ),
    (
        "customer_support",
        """Subject: How to reset your router to factory settings

Hello Mr. Adeyemi,

As discussed on the phone, here are the steps. 1) With the router on, press the reset button on the back with a paper clip for 10 seconds, until the lights flash. 2) Wait about three minutes for it to restart. 3) Connect using the network name and password printed on the label underneath. 4) Open the setup page and enter your customer number. Note that the reset overrides all your custom settings, including port forwarding, so write them down first.

Technical Support""",
    ),
    (
        "customer_support",
        """Objet : Votre demande de résiliation

Madame, Monsieur,

nous avons bien reçu votre demande de résiliation de l'abonnement. Celle-ci prendra effet à la fin de la période en cours, le 30 juin ; vous conservez l'accès au service jusqu'à cette date. Aucune autre démarche n'est nécessaire. Si vous avez changé d'avis, il suffit de répondre à ce courriel avant le 30 juin pour annuler la résiliation. Vous pouvez ignorer les rappels de renouvellement automatiques que vous pourriez encore recevoir.

Cordialement,
Le service client""",
    ),
    (
        "customer_support",
        """Subject: Re: invoice shows wrong company name

Hi Mr. Lindberg,

Sorry about that. The invoice uses the company name stored in your billing profile, which still shows your old company name. I have corrected the profile and issued a corrected invoice, attached to this e-mail. Please disregard the original invoice number 2024-3318; the corrected one is 2024-3318-C, with the same amount and due date. Future invoices will use the new name automatically. Let me know if your accounting department needs a credit note as well.

Kind regards, Billing Support""",
    ),
    (
        "customer_support",
        """Subject: Update on your ticket #44170

Hello Dr. Mensah,

Our engineers found the cause of the sync problem: the desktop app stopped syncing when a file name contained a colon, which your operating system allows but our servers do not. A fix is in version 5.2.1, released today. Please update the app from the help menu. Files that failed to sync will upload automatically after the update. If a file still does not sync, rename it without the colon. We will close the ticket in five days unless you tell us otherwise.

Support Team""",
    ),
    (
        "customer_support",
        """Subject: Your appointment is confirmed

Dear Ms. Haddad,

Your appointment for the boiler service is confirmed for Tuesday, 9 April, between 8:00 and 12:00. Please make sure the technician can access the boiler and the water meter. The technician will call about 30 minutes before arriving. If you need to change the date, use the link in your customer account or call us at least 24 hours in advance; later cancellations may be charged. Ignore the earlier reminder that gave a time window in the afternoon; it was sent in error.

Customer Service""",
    ),
    # -- data and tooling migrations
    (
        "data_migration",
        """Subject: Shared drive migration next weekend

Hi all,

Next weekend we move the shared drives to the new document platform. On Friday at 18:00 the old drives become read-only. From Monday, your files are in the new platform with the same folder structure; links in old e-mails will redirect automatically for six months. Please do not copy files to your desktop "to be safe" before the move: that creates duplicates that will be out of date. Files larger than 15 GB are skipped; the attached list shows them, and their owners have been contacted.

IT Projects""",
    ),
    (
        "data_migration",
        """Subject: CRM data cleanup — please check your accounts

Hello sales team,

Before we import the CRM data into the new system, please review the accounts you own: merge duplicates, close accounts that have been inactive for three years, and fill in the missing industry field. A report of your accounts with issues is in your dashboard. Records not reviewed by the 15th will be imported as they are, and the import will override any changes made in the old system after that date, so please stop editing there on the 15th.

Sales Operations""",
    ),
    (
        "data_migration",
        """Subject: New ticketing system goes live on Monday

Hi everyone,

On Monday we switch to the new ticketing system. Open tickets are moved over with their history. The old system stays available read-only for three months. How to raise a request from Monday: use the portal link on the intranet, or write to the usual support address, which now creates tickets in the new system. Notifications come from a new sender address; add it to your safe senders so they do not land in spam. Please ignore any notifications from the old system after Monday.

Service Management""",
    ),
    (
        "data_migration",
        """Betreff: Umstellung des Kalendersystems

Liebe Kolleginnen und Kollegen,

am Wochenende wird das Kalendersystem umgestellt. Ihre Termine werden automatisch übertragen; Besprechungsräume müssen Sie nicht neu buchen. Bitte legen Sie zwischen Freitag 16 Uhr und Montag 8 Uhr keine neuen Termine an, da diese sonst verloren gehen könnten. Wiederkehrende Termine mit externen Teilnehmern sollten Sie am Montag kurz prüfen. Falls ein Termin fehlt, melden Sie ihn bitte über das Serviceportal.

Ihr IT-Service""",
    ),
    (
        "data_migration",
        """Subject: Analytics tables renamed — update your dashboards

Hi data users,

As announced, we renamed the analytics tables to the new naming scheme on Monday. Views with the old names still exist and point to the new tables, so nothing breaks yet. The old views will be removed on 30 November. Please update your dashboards and scheduled queries before then; the mapping of old to new names is in the data catalogue. You can ignore the deprecation warning the query editor shows until you have updated, but do not create new queries on the old names.

Data Platform""",
    ),
    (
        "data_migration",
        """Subject: Mailbox archive limits changing

Hi everyone,

From next month, mailboxes are limited to 50 GB, and messages older than three years move to the online archive automatically. You can still search and open them in the archive folder. If your mailbox is above 50 GB today, you will get a personal message with instructions. Please do not export mail to local PST files to work around the limit; those files are not backed up and are blocked by policy. Shared mailboxes follow the same rules.

Messaging team""",
    ),
    (
        "data_migration",
        """Subject: Re: moving the team wiki

Hi Pieter,

Thanks for offering to help with the wiki move. Plan: 1) export the old wiki as HTML, 2) run the conversion script to Markdown (in the migration repository), 3) fix the pages the script reports as broken, 4) import into the new knowledge base. Please skip the archive section and anything under "old-projects"; nobody has read it in years. Internal links are rewritten by the script, but links from other systems into the old wiki will break, so keep a redirect list.

Cheers, Ilse""",
    ),
    # -- legal, compliance and data protection
    (
        "compliance",
        """Subject: Data retention: delete old customer exports

Hi all,

Our retention policy says customer data exports may be kept for 90 days. A scan found 212 export files older than that on shared drives and in personal folders. Please delete the files listed for you in the attached report by the end of the month, including copies in your downloads folder and e-mail attachments you sent to yourself. If you need to keep a file longer for a legal reason, do not ignore the report: reply with the reason and we will record an exception.

Data Protection Office""",
    ),
    (
        "compliance",
        """Subject: Legal hold — do not delete documents

Dear colleagues,

Because of a pending dispute with a former supplier, a legal hold applies from today to all documents, e-mails and chat messages about the warehouse project from 2021 to today. Do not delete, edit or move these items, even if a retention rule or a cleanup reminder tells you to; the hold overrides those rules. Automatic deletion has been suspended for the affected mailboxes. If you are unsure whether a document is covered, keep it and ask Legal.

Legal Department""",
    ),
    (
        "compliance",
        """Subject: Responding to data subject requests

Hi support team,

When a customer asks for a copy of their data or for deletion, do not handle it in the normal ticket flow. Forward the request to the privacy mailbox within one working day, verify the customer's identity using the account e-mail (never by asking for ID documents by e-mail), and tell the customer we will respond within 30 days. Do not confirm or deny what data we hold before the privacy team has checked. The template replies are in the knowledge base under "Privacy".

Privacy team""",
    ),
    (
        "compliance",
        """Subject: Annual compliance training due 31 March

Hello,

The annual compliance training (anti-bribery, data protection, information security) is now available in the learning portal. It takes about 45 minutes and can be paused. Completion is mandatory for all employees and contractors by 31 March. If you completed an equivalent training with a client this year, upload the certificate and the portal will mark you as exempt. Reminders are sent weekly; you can ignore them once the portal shows the course as completed.

Compliance""",
    ),
    (
        "compliance",
        """Oggetto: Nuova procedura per i regali dai fornitori

Gentili colleghi,

da aprile i regali ricevuti da fornitori o clienti con un valore superiore a 50 euro vanno registrati nel modulo online entro cinque giorni. Gli inviti a eventi vanno approvati prima dal responsabile. In caso di dubbio, registrate comunque il regalo: sarà l'ufficio compliance a valutarlo. Le istruzioni precedenti, che prevedevano una soglia di 100 euro, non sono più valide.

Cordiali saluti,
Ufficio Compliance""",
    ),
    (
        "compliance",
        """Subject: Export control check for the new distributor

Hi Stefan,

Before we ship the first order to the new distributor, please run the export control screening in the trade compliance tool: the company, its directors and the end customer named in the order. If the tool shows a potential match, do not override it yourself, even if it looks like a false positive caused by a common name; send it to me with the details and I will clear it. Shipping documents need the classification number of each product, which is in the product master data.

Regards, Aylin (Trade Compliance)""",
    ),
    (
        "compliance",
        """Subject: Whistleblowing channel — reminder

Dear all,

A reminder that you can report suspected misconduct, such as fraud, bribery or serious safety issues, through our whistleblowing channel. Reports can be anonymous. They are received by an external provider and handled by a small committee that is independent of management. Retaliation against anyone who reports in good faith is forbidden and will be treated as misconduct itself. The channel's web address and phone number are on the intranet homepage and in the employee handbook.

Ethics Committee""",
    ),
]
