# Texts of the mails Sealpost generates and of the attachment secure.htm.

# Carrier mail: the readable wrapper around an encrypted message.
carrier.subject_fallback = Encrypted message
carrier.heading = You have received an encrypted message
carrier.intro = {sender} has sent you a confidential message. To protect its content, it was encrypted by {org} and can only be read after you sign in.
carrier.step_attachment = Open the attachment secure.htm in your web browser and sign in with your e-mail address and password.
carrier.step_upload = If your device cannot open the attachment (for example on a mobile phone), go to {url} and upload the file secure.htm there.
carrier.portal_label = Secure message portal
carrier.portal_link = Go to the secure message portal
carrier.sender_label = Sender
carrier.first_time = If this is your first secure message, the sender will give you your login details separately.
carrier.reply_hint = To reply confidentially, use the reply function in the portal.

# secure.htm: the attachment that carries the ciphertext.
securehtm.title = Secure message
securehtm.heading = Secure message from {org}
securehtm.what = This file contains an encrypted message. It is opened in the secure message portal, where you sign in with your e-mail address and password.
securehtm.button = Open secure message
securehtm.opening = The secure message portal is being opened …
securehtm.fallback = If nothing happens, please press the button "Open secure message".
securehtm.mobile = On a phone or tablet that cannot open this file, go to {url} and upload this file (secure.htm) there.
securehtm.noscript = Your browser does not run scripts in this file. Please press the button "Open secure message".

# Credentials mail (first use: to the sender; reset: to the recipient).
credentials.subject = Login details for secure messages to {recipient}
credentials.intro = You have sent an encrypted message to {recipient} for the first time. An account has been created for this address on the secure message portal.
credentials.pass_on = Please pass the following login details on to the recipient by a different channel: by telephone, by SMS or in person. Never send them by unencrypted e-mail.
credentials.portal_line = Portal: {url}
credentials.account_line = E-mail address: {recipient}
credentials.password_line = Password: {password}
credentials.change_hint = The recipient can change this password after signing in.
reset.subject = Your new login details for secure messages
reset.intro = The password of your account on the secure message portal has been reset. Your new login details are:
reset.change_hint = Please sign in and choose a new password of your own. If you did not expect this message, please contact the sender of your secure messages.

# Delivery status notification (bounce).
bounce.from_name = Mail Delivery System
bounce.subject = Undelivered Mail Returned to Sender
bounce.intro = This is the mail system at host {host}.\n\nI'm sorry to have to inform you that your message could not be delivered to one or more recipients. The details are below.
bounce.recipients_label = The following recipients could not be reached:
bounce.headers_hint = The header of your message is attached.
# Security mails to the account holder: one-time code, notices, reset link
code.subject = Your code for resetting your password
code.intro = A reset of the password of your account {recipient} on the secure message portal was requested. Your one-time code is:
code.line = Code: {code}
code.validity = The code is valid for {minutes} minutes and works once. Enter it on the portal together with the answer to your secret question.
code.not_you = If you did not ask for this, you can ignore this message: without the code and the answer nobody can reset your password.
notice.subject = Security notice for your secure message account
notice.reset_answer = The password of your account {recipient} was reset on the forgotten-password page.
notice.reset_link = A new password for your account {recipient} was set with a one-time link.
notice.reset_admin = An administrator reset the password of your account {recipient}. The new login details were sent to the person who sends you secure messages.
notice.password_changed = The password of your account {recipient} was changed.
notice.question_changed = The secret question of your account {recipient} was changed.
notice.when = Time: {time}
notice.client = Client address: {ip}
notice.not_you = If this was not you, please contact the sender of your secure messages at once: they can have an administrator lock your account and reset its password.
link.subject = Set a new password for secure messages
link.intro = An administrator reset the password of your account {recipient} on the secure message portal; your old password no longer works. Choose a new password with this one-time link:
link.validity = The link is valid for {hours} hours and works once. If you did not expect this message, please contact the sender of your secure messages.
