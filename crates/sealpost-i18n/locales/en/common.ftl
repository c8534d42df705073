# Texts shared by mails, secure.htm and the portal.
common.language_name = English
common.unknown_sender = an unknown sender
common.auto_generated = This message was generated automatically by {org}. Please do not reply to it.
common.greeting = Hello,
common.regards = Kind regards
common.email_address = E-mail address
