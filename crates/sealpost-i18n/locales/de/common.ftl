# Gemeinsame Texte für Mails, secure.htm und das Portal.
common.language_name = Deutsch
common.unknown_sender = ein unbekannter Absender
common.auto_generated = Diese Nachricht wurde automatisch von {org} erstellt. Bitte antworten Sie nicht auf diese Nachricht.
common.greeting = Guten Tag,
common.regards = Mit freundlichen Grüßen
common.email_address = E-Mail-Adresse
