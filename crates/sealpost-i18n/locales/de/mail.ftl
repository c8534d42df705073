# Texte der von Sealpost erzeugten Mails und des Anhangs secure.htm.

# Träger-Mail: die lesbare Hülle um eine verschlüsselte Nachricht.
carrier.subject_fallback = Verschlüsselte Nachricht
carrier.heading = Sie haben eine verschlüsselte Nachricht erhalten
carrier.intro = {sender} hat Ihnen eine vertrauliche Nachricht gesendet. Zum Schutz des Inhalts wurde sie von {org} verschlüsselt und kann erst nach Ihrer Anmeldung gelesen werden.
carrier.step_attachment = Öffnen Sie den Anhang secure.htm in Ihrem Webbrowser und melden Sie sich mit Ihrer E-Mail-Adresse und Ihrem Passwort an.
carrier.step_upload = Falls Ihr Gerät den Anhang nicht öffnen kann (zum Beispiel ein Mobiltelefon), rufen Sie {url} auf und laden Sie dort die Datei secure.htm hoch.
carrier.portal_label = Portal für sichere Nachrichten
carrier.portal_link = Zum Portal für sichere Nachrichten
carrier.sender_label = Absender
carrier.first_time = Wenn dies Ihre erste sichere Nachricht ist, erhalten Sie Ihre Zugangsdaten gesondert vom Absender.
carrier.reply_hint = Für eine vertrauliche Antwort nutzen Sie bitte die Antwortfunktion im Portal.

# secure.htm: der Anhang, der den verschlüsselten Inhalt trägt.
securehtm.title = Sichere Nachricht
securehtm.heading = Sichere Nachricht von {org}
securehtm.what = Diese Datei enthält eine verschlüsselte Nachricht. Sie wird im Portal für sichere Nachrichten geöffnet, in dem Sie sich mit Ihrer E-Mail-Adresse und Ihrem Passwort anmelden.
securehtm.button = Sichere Nachricht öffnen
securehtm.opening = Das Portal für sichere Nachrichten wird geöffnet …
securehtm.fallback = Falls nichts geschieht, klicken Sie bitte auf die Schaltfläche „Sichere Nachricht öffnen“.
securehtm.mobile = Auf einem Mobiltelefon oder Tablet, das diese Datei nicht öffnen kann, rufen Sie {url} auf und laden Sie dort diese Datei (secure.htm) hoch.
securehtm.noscript = Ihr Browser führt in dieser Datei keine Skripte aus. Bitte klicken Sie auf die Schaltfläche „Sichere Nachricht öffnen“.

# Zugangsdaten (Erstnutzung: an den Absender; Zurücksetzen: an den Empfänger).
credentials.subject = Zugangsdaten für sichere Nachrichten an {recipient}
credentials.intro = Sie haben zum ersten Mal eine verschlüsselte Nachricht an {recipient} gesendet. Für diese Adresse wurde ein Konto im Portal für sichere Nachrichten eingerichtet.
credentials.pass_on = Bitte geben Sie die folgenden Zugangsdaten auf einem anderen Weg an den Empfänger weiter: telefonisch, per SMS oder persönlich. Senden Sie sie niemals per unverschlüsselter E-Mail.
credentials.portal_line = Portal: {url}
credentials.account_line = E-Mail-Adresse: {recipient}
credentials.password_line = Passwort: {password}
credentials.change_hint = Der Empfänger kann dieses Passwort nach der Anmeldung ändern.
reset.subject = Ihre neuen Zugangsdaten für sichere Nachrichten
reset.intro = Das Passwort Ihres Kontos im Portal für sichere Nachrichten wurde zurückgesetzt. Ihre neuen Zugangsdaten lauten:
reset.change_hint = Bitte melden Sie sich an und wählen Sie ein eigenes, neues Passwort. Falls Sie diese Nachricht nicht erwartet haben, wenden Sie sich bitte an den Absender Ihrer sicheren Nachrichten.

# Unzustellbarkeitsnachricht (Bounce).
bounce.from_name = Mail-Zustellsystem
bounce.subject = Unzustellbare Nachricht an den Absender zurückgesandt
bounce.intro = Dies ist das Mailsystem auf dem Rechner {host}.\n\nLeider konnte Ihre Nachricht an einen oder mehrere Empfänger nicht zugestellt werden. Die Einzelheiten finden Sie unten.
bounce.recipients_label = Die folgenden Empfänger konnten nicht erreicht werden:
bounce.headers_hint = Der Kopfbereich Ihrer Nachricht ist angehängt.
# Sicherheitsmails an den Kontoinhaber: Einmalcode, Hinweise, Link zum Zurücksetzen
code.subject = Ihr Code zum Zurücksetzen Ihres Passworts
code.intro = Für Ihr Konto {recipient} im Portal für sichere Nachrichten wurde das Zurücksetzen des Passworts angefordert. Ihr Einmalcode lautet:
code.line = Code: {code}
code.validity = Der Code ist {minutes} Minuten gültig und funktioniert einmal. Geben Sie ihn im Portal zusammen mit der Antwort auf Ihre Sicherheitsfrage ein.
code.not_you = Falls Sie das nicht angefordert haben, können Sie diese Nachricht ignorieren: Ohne den Code und die Antwort kann niemand Ihr Passwort zurücksetzen.
notice.subject = Sicherheitshinweis zu Ihrem Konto für sichere Nachrichten
notice.reset_answer = Das Passwort Ihres Kontos {recipient} wurde über die Seite „Passwort vergessen“ zurückgesetzt.
notice.reset_link = Für Ihr Konto {recipient} wurde mit einem Einmal-Link ein neues Passwort gesetzt.
notice.reset_admin = Ein Administrator hat das Passwort Ihres Kontos {recipient} zurückgesetzt. Die neuen Zugangsdaten gingen an die Person, die Ihnen sichere Nachrichten sendet.
notice.password_changed = Das Passwort Ihres Kontos {recipient} wurde geändert.
notice.question_changed = Die Sicherheitsfrage Ihres Kontos {recipient} wurde geändert.
notice.when = Zeit: {time}
notice.client = Client-Adresse: {ip}
notice.not_you = Falls Sie das nicht waren, wenden Sie sich bitte sofort an den Absender Ihrer sicheren Nachrichten: Er kann Ihr Konto von einem Administrator sperren und das Passwort zurücksetzen lassen.
link.subject = Neues Passwort für sichere Nachrichten festlegen
link.intro = Ein Administrator hat das Passwort Ihres Kontos {recipient} im Portal für sichere Nachrichten zurückgesetzt; Ihr altes Passwort funktioniert nicht mehr. Wählen Sie mit diesem Einmal-Link ein neues Passwort:
link.validity = Der Link ist {hours} Stunden gültig und funktioniert einmal. Falls Sie diese Nachricht nicht erwartet haben, wenden Sie sich bitte an den Absender Ihrer sicheren Nachrichten.
