/**
 * Word lists for the synthetic 10,000-article knowledge base: IT-support nouns, verbs, adjectives and
 * symptoms, plus ordinary English filler. Articles and queries draw from them with a Zipf-like skew, so a few
 * words (vpn, password, the, to) are common and most are rare, as in a real KB.
 */

export const CATEGORIES = [
  'network',
  'accounts',
  'email',
  'hardware',
  'software',
  'security',
  'printing',
  'mobile',
  'collaboration',
  'storage',
  'remote-work',
  'onboarding',
  'policies',
  'telephony',
  'facilities',
];

export const NOUNS = `
vpn password laptop printer wifi email outlook mailbox calendar teams zoom monitor dock docking station keyboard mouse
headset webcam camera microphone speaker battery charger adapter cable usb hdmi displayport bluetooth driver firmware
bios bitlocker encryption certificate token authenticator mfa otp phone smartphone tablet ipad iphone android sim
account profile group license subscription installer update patch reboot restart shutdown login logon sign-in session
browser chrome edge firefox safari cookie cache proxy firewall dns dhcp ip address subnet gateway router switch port
ethernet cable hotspot tethering roaming ssid network share drive folder file permission onedrive sharepoint dropbox
backup restore sync quota storage disk ssd memory ram cpu fan overheating screen display resolution brightness touchpad
trackpad stylus pen scanner copier toner cartridge tray paper jam queue spooler fax voicemail extension headset desk
meeting room projector whiteboard badge door access visitor guest contractor starter leaver offboarding onboarding
request ticket incident approval manager helpdesk servicedesk technician engineer policy compliance audit retention
phishing spam quarantine attachment link malware virus antivirus defender ransomware breach incident report alert
signature template distribution list alias forwarding rule archive pst ost exchange smtp imap autodiscover migration
tenant domain directory ldap sso saml oauth portal intranet wiki confluence jira slack github gitlab vscode python java
excel word powerpoint onenote pdf acrobat reader visio project office suite macos windows linux ubuntu kernel terminal
shell ssh rdp remote desktop citrix vdi thin client kiosk hotdesk locker pc workstation desktop server cluster database
sql backup snapshot replica cloud azure aws gcp bucket vault secret key keychain credential manager recovery reset
expiry expiration lockout unlock enrolment enrollment registration device inventory asset tag warranty repair
replacement loan shipping courier purchase order catalog budget cost centre invoice timesheet payroll hr benefits
`
  .trim()
  .split(/\s+/);

export const VERBS = `
connect disconnect install uninstall update upgrade reset unlock enrol enroll register configure set map mount sync
share print scan copy send receive forward archive restore recover back encrypt decrypt sign verify approve request
submit cancel renew extend transfer move migrate replace repair return order join leave add remove delete rename open
close launch start stop restart reboot charge pair unpair mute unmute record schedule book invite accept decline
`
  .trim()
  .split(/\s+/);

export const SYMPTOMS = `
slow frozen stuck missing blank flickering crashing failing dropping disconnecting looping greyed locked expired
invalid unsupported corrupted duplicated delayed intermittent offline unreachable denied blocked throttled full
noisy overheating draining unresponsive garbled distorted echoing lagging timing-out rejected bouncing
`
  .trim()
  .split(/\s+/);

export const ADJECTIVES = `
new old shared personal corporate remote local wireless wired external internal primary secondary temporary permanent
default custom multiple single mobile guest secure public private encrypted managed unmanaged legacy modern
`
  .trim()
  .split(/\s+/);

/** Ordinary English, most frequent first (a Zipf draw favours the head). */
export const FILLER = `
the to and a of in is you for your on it this if that with be can are or not from as by at will
when then an use have do how may after before all any more other each only also should must
need try make sure check see open select click choose follow steps below above first next again
still while until because so into out up down over some most many same every new often usually
already never always please note find want work works working does doesn't cannot isn't don't my i we
our their they them there here what which who where why time minutes hours day days week today
`
  .trim()
  .split(/\s+/);

export const MODELS = [
  'Latitude',
  'ThinkPad',
  'EliteBook',
  'MacBook',
  'Surface',
  'OptiPlex',
  'ProBook',
  'XPS',
  'Precision',
  'ZBook',
];
