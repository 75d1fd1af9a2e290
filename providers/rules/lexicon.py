"""Words the rules look for, per language (ISO 639-1: en, de, fr, es)."""

from __future__ import annotations

LANGUAGES = ("en", "de", "fr", "es")


def _words(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text`."""
    return frozenset(text.split())


def _phrases(text: str) -> tuple[str, ...]:
    """The comma-separated phrases of `text`, stripped."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


# Month names and their usual abbreviations, lowercased, to the month number.
MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january jan janvier janv januar jän enero ene",
        "february feb février fevrier févr fevr februar feber febrero",
        "march mar mars märz maerz mär marzo",
        "april apr avril avr abril abr",
        "may mai mayo",
        "june jun juin juni junio",
        "july jul juillet juil juli julio",
        "august aug août aout agosto ago",
        "september sep sept septembre setiembre septiembre",
        "october oct octobre oktober okt octubre",
        "november nov novembre noviembre",
        "december dec décembre decembre dezember dez diciembre dic",
    ),
    start=1,
):
    for _name in _names.split():
        MONTHS[_name] = _number

# Phone numbers are read as written in these countries first (then only with a country code).
PHONE_REGIONS = {"en": ("US", "GB"), "de": ("DE", "AT", "CH"), "fr": ("FR", "BE"), "es": ("ES",)}

# Words that announce a phone number within a few characters.
PHONE_CUES = _phrases(
    """
    tel, phone, call, mobile, cell, fax, hotline, whatsapp, sms,
    telefon, handy, mobil, rufnummer, anrufen, erreichbar,
    tél, téléphone, telephone, portable, appeler, appelez, joindre,
    teléfono, telefono, móvil, movil, llamar, llame, llámenos, celular,
    """
)

# Labels that introduce a reference number, lowercased; the number follows within a few
# characters ("Kundennummer K-448210", "Invoice no.: 2024-17", "N° de commande 88812").
IDENTIFIER_LABELS = _phrases(
    """
    id, ref, reference, ticket, case, order, invoice, contract, policy,
    account number, account no, account id, customer, customer number, customer no,
    customer id, client id, member, membership, subscription, subscription id,
    subscriptionid, booking, reservation, tracking, claim, serial, serial number, flight, train,
    code, promo code, voucher, coupon,
    license, licence, request, quote, quotation, purchase order, po, shipment,
    number, no, nr, #, tax id, tax number, vat number, vat id, ssn,
    kundennummer, kundennr, kunden-nr, rechnungsnummer, rechnungsnr, rechnung,
    rechnungs-nr, vertragsnummer, vertragsnr, vertrag, bestellnummer, bestellnr,
    bestellung, auftragsnummer, auftragsnr, auftrag, aktenzeichen, az,
    vorgangsnummer, vorgang, ticketnummer, referenz, referenznummer, mitgliedsnummer,
    versicherungsnummer, policennummer, sendungsnummer, zählernummer, buchungsnummer,
    angebotsnummer, angebot, mandatsreferenz, nummer, steuernummer, steuer-id, ust-idnr,
    identnummer, schadennummer, versicherungsschein, flug, zug, gutscheincode, rabattcode,
    numéro, numero, n°, no., référence, reference client, dossier, facture,
    commande, contrat, client, abonnement, abonné, adhérent, devis, réservation,
    sinistre, colis, suivi, numéro fiscal, siret, siren, numéro de sécurité sociale, vol, train,
    code promo, bon,
    número, nº, n.º, núm, referencia, factura, pedido, contrato, cliente,
    expediente, póliza, poliza, suscripción, suscripcion, reserva, incidencia,
    solicitud, presupuesto, socio, envío, envio, localizador, nif, cif, nie, dni,
    número fiscal, vuelo, tren, código, cupón,
    """
)

# Words before a name that make it a person's, matched case-insensitively: greetings,
# introductions, salutations written out.
PERSON_CUES = _phrases(
    """
    dear, hi, hello, hey, my name is, i am, i'm, this is, attn, attention, signed,
    spoke with, speak to, talked to, assigned to, colleague, account manager, manager, advisor,
    adviser, consultant, representative, technician, contact person, assistant, shop assistant,
    clerk, driver, courier, nurse, doctor, staff member, employee, welcome,
    liebe, lieber, hallo, sehr geehrte, sehr geehrter, mein name ist, ich bin, z. hd., z.hd.,
    zu händen, kollege, kollegin, berater, beraterin, sachbearbeiter, sachbearbeiterin,
    ansprechpartner, ansprechpartnerin, techniker, technikerin, mitarbeiter, mitarbeiterin,
    begrüßen,
    cher, chère, bonjour, bonsoir, salut, je m'appelle, je suis, mon nom est, collègue,
    conseiller, conseillère, technicien, technicienne, interlocuteur, interlocutrice, accueillir,
    estimado, estimada, querido, querida, hola, me llamo, mi nombre es, soy, compañero, compañera,
    gestor, gestora, asesor, asesora, técnico, técnica, agente, bienvenida a,
    """
)

# Possessives that start a role after a name: "Sandrine Lemoine, notre responsable".
APPOSITIVES = _phrases(
    """
    our, your, my, his, her, unser, unsere, ihr, ihre, mein, meine, notre, votre, mon, ma,
    nuestro, nuestra, su, mi,
    """
)

# Titles written before a name, matched as written (a trailing dot is optional, "M." needs it).
TITLES = _phrases(
    """
    Mr, Mrs, Ms, Miss, Mx, Dr, Prof, Sir, Madam, Herr, Herrn, Frau, Fr, Hr, Dipl.-Ing, Mag,
    med, dent, phil, rer. nat, jur, habil, Dipl, Ing,
    M., Mme, Mlle, Monsieur, Madame, Mademoiselle, Me, Maître, Pr,
    Sr, Sra, Srta, Don, Doña, Dña, Señor, Señora, Señorita, Lic, Ing, Dra,
    """
)

# Field labels whose value, after a colon, is a person's name ("From: Anna Weber <…>").
PERSON_FIELDS = _phrases(
    """
    from, to, cc, sender, name, full name, contact, contact person, customer, account holder,
    signed by, requested by, reported by, agent, employee, owner, author, assignee, assigned to,
    prepared by, approved by, manager, attn, opened by, created by, submitted by,
    von, an, absender, empfänger, name, ansprechpartner, ansprechpartnerin, kontakt, kunde,
    kundin, kontoinhaber, kontoinhaberin, sachbearbeiter, sachbearbeiterin, bearbeiter,
    verantwortlich, autor, autorin, gemeldet von, erstellt von, zuständig, geöffnet von,
    eingereicht von,
    de, à, expéditeur, destinataire, nom, nom complet, contact, interlocuteur, client, cliente,
    titulaire, conseiller, conseillère, signalé par, responsable, auteur, rédigé par,
    ouvert par, créé par, soumis par,
    de, para, remitente, destinatario, nombre, nombre completo, contacto, persona de contacto,
    cliente, titular, asesor, asesora, agente, responsable, autor, autora, reportado por,
    abierto por, creado por, enviado por,
    """
)

# Labels of a list of people, such as the attendees of a meeting.
PEOPLE_LISTS = _phrases(
    """
    attendees, participants, present, people present, invited, invitees, cc,
    teilnehmer, teilnehmende, teilnehmerinnen, anwesend, anwesende, verteiler,
    présents, présentes, participants, participantes, invités, excusés,
    asistentes, participantes, presentes, invitados, asistieron,
    """
)

# Lines that close a letter; the name usually follows on the next lines.
CLOSINGS = _phrases(
    """
    best regards, kind regards, regards, best wishes, sincerely, yours sincerely,
    yours faithfully, yours truly, thanks, thank you, many thanks, cheers, best,
    warm regards, all the best,
    mit freundlichen grüßen, mit freundlichen grüssen, freundliche grüße, viele grüße,
    beste grüße, liebe grüße, herzliche grüße, grüße, gruß, mfg, danke,
    cordialement, bien cordialement, bien à vous, salutations, sincères salutations,
    meilleures salutations, merci, à bientôt, veuillez agréer,
    atentamente, saludos, un saludo, saludos cordiales, cordialmente, muchas gracias,
    gracias, un abrazo, reciba un cordial saludo,
    """
)
# Words that make a short line a closing wherever they stand in it ("Mit besten Grüßen",
# "Un cordial saludo"); matched as word beginnings.
CLOSING_WORDS = _phrases(
    """
    regards, wishes, sincerely, faithfully, respectfully, cheers,
    grüße, grüßen, grüsse, grüssen, gruß, gruss, hochachtungsvoll,
    cordialement, salutations, amicalement, respectueusement,
    saludo, saludos, atentamente, cordialmente, abrazo,
    """
)

# Mailbox names of organisations, not people: a header name before one is no person's.
ROLE_MAILBOXES = _words(
    """
    info information contact kontakt contacto support help helpdesk hilfe ayuda aide service
    services kundenservice customerservice servicio sav sales vertrieb ventas ventes billing
    rechnung rechnungen buchhaltung facturation facturacion factura invoices invoice accounts
    orders order bestellung pedidos commandes booking bookings reservations reservas
    noreply no-reply donotreply newsletter news team office mail admin hello hallo hola bonjour
    reclamaciones reclamations beschwerde complaints jobs karriere hr rh
    """
)
# Capitalised words that are not names: roles, organisations, document words, places of
# a letterhead. Lowercased; a candidate name made of one of these is dropped.
NOT_NAMES = _words(
    """
    team support service services customer customers client sales billing account accounts
    department office management manager director admin administrator desk help helpdesk
    company group inc ltd llc gmbh ag kg se sa sas sarl sl slu bv plc co corp corporation
    invoice order contract subscription payment delivery ticket case reference hotline
    monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday
    january february march april may june july august september october november december
    dear hello hi thanks thank regards best kind sincerely please the a an and or of for to
    sir madam sirs colleagues everyone all friends members neighbours neighbors folks guys
    kolleginnen kollegen freunde mitglieder nachbarn leute zusammen alle
    family familie famille familia
    collègues amis membres voisins tous toutes chers chères
    compañeros amigos miembros vecinos todos todas señores
    kundenservice kundendienst kundenbetreuung vertrieb buchhaltung abteilung geschäftsführung
    rechnung vertrag bestellung kunde kundin herr frau damen herren sehr geehrte geehrter
    montag dienstag mittwoch donnerstag freitag samstag sonntag januar februar märz mai juni
    juli oktober dezember grüße gruß freundlichen vielen dank bitte ihr ihre ihnen wir uns
    service-team support-team team-leiter leitung
    équipe service clientèle clients facture commande contrat abonnement madame monsieur
    lundi mardi mercredi jeudi vendredi samedi dimanche janvier février avril juin juillet
    août septembre octobre novembre décembre bonjour merci cordialement salutations
    equipo atención cliente clientes factura pedido contrato suscripción departamento
    lunes martes miércoles jueves viernes sábado domingo enero febrero marzo abril mayo
    junio julio agosto septiembre octubre noviembre diciembre hola gracias saludos atentamente
    estimado estimada señor señora usted
    street road avenue strasse straße str platz weg allee rue avenue boulevard calle avenida
    plaza paseo berlin munich münchen hamburg paris lyon madrid barcelona london
    new york iban bic swift vat ust mwst tva iva email e-mail phone tel fax www http https
    pdf docx html
    bank banco banque sparkasse volksbank versicherung insurance assurance assurances seguros
    verlag editorial éditions hotel hôtel hospital university universidad université
    universität school escuela école schule stadtwerke ayuntamiento mairie gemeinde
    """
)

# Particles inside names ("Ludwig van Beethoven", "María de la Cruz").
NAME_PARTICLES = _words("van von der den de del della la le du da di dos das y")

# Courtesy words of letters, no keywords of what a letter is about.
LETTER_WORDS = _words(
    """
    hello dear thanks thank regards best kind sincerely please would like kindly
    hallo liebe lieber sehr geehrte geehrter damen herren bitte danke vielen grüße gruß
    freundlichen freundliche beste anbei
    bonjour bonsoir merci cordialement salutations madame monsieur cher chère veuillez
    agréer souhaite
    hola gracias saludos atentamente estimado estimada señor señora quisiera cordial
    """
)
