# Custode farm probe for Windows: one run per poll, one JSON document on stdout.
#
# Why it looks the way it does
# ----------------------------
# * It must run unchanged on Windows PowerShell 2.0 (Windows Server 2008 R2 as shipped) up to 5.1:
#   no ConvertTo-Json (missing on 2.0; elsewhere it cuts at depth 2 and turns one-element arrays
#   into objects), no [ordered], no member enumeration ($list.Name), no .Count on a scalar, no -in;
#   and foreach over $null runs once on 2.0, so lists are always built with @(...).
# * probe_command() (windows.py) sends this file as written, after a header that sets $U; the WinRM
#   transport passes it on the command's stdin, so the 8191-character command line does not bound
#   it. The names are short from the days it had to fit there. PowerShell variables ignore case
#   ($c is $C): names used together differ ignoring case.
# * J writes the JSON itself: every character outside printable ASCII, and " and \, becomes \uXXXX,
#   so the output is plain ASCII whatever the console code page; numbers are written by
#   PowerShell's own string conversion, which always uses the invariant culture (.ToString() on an
#   Italian Windows writes 1,5); dates become ISO 8601 UTC strings.
#
# The document, one section per line, each written as soon as it is done:
#   {"probe":"custode-windows","format":1
#   ,"ps":"5.1.17763.1852"
#   ,"os":{...}
#   ...
#   ,"errors":[{"section":"updates","message":"..."}]
#   ,"end":true}
# S runs every section in its own try/catch: a failure becomes an entry of "errors" and that
# section's value is null; the other sections still run. "end" comes last, so output cut by a
# timeout or by a size limit is recognised as truncated. The slow Windows Update sections come
# last, so a timeout loses as little as possible (the parser names the section that did not end).
#
# $U: probe_command() sets $U=0 when this poll skips the Windows Update search.

$ErrorActionPreference='Stop'
$ProgressPreference='SilentlyContinue'
$Z=@()
# G: the WMI cmdlet: Get-CimInstance from PowerShell 3.0 on, else Get-WmiObject. Both take -Query
# and -Namespace; CIM gives DateTime values where WMI gives DMTF strings: the parser reads both.
$G='Get-WmiObject';if(gcm Get-CimInstance -ea 0){$G='Get-CimInstance'}

# J: any value as JSON text. A value type whose text is a number, True or False is written bare;
# a string with nothing to escape skips the (slow) character loop.
function J($v){if($null -eq $v){return 'null'}
if($v -is [datetime]){$v=$v.ToUniversalTime().ToString('o')}
if($v -is [hashtable]){return '{'+(@($v.Keys|%{(J "$_")+':'+(J $v[$_])})-join',')+'}'}
if($v -is [array]){return '['+(@($v|%{J $_})-join',')+']'}
$s="$v"
if($v -is [ValueType] -and $s -match '^(-?[\d.]+(E[+-]?\d+)?|True|False)$'){return $s.ToLower()}
$q='[^ !#-\[\]-~]'
if($s -notmatch $q){return '"'+$s+'"'}
$o='"';foreach($c in [char[]]$s){if("$c" -match $q){$o+='\u{0:x4}' -f [int]$c}else{$o+=$c}};$o+'"'}

# S: run section $n, write the line ,"n":value
function S($n,$b){try{$x=J(& $b)}catch{$script:Z+=@{section=$n;message="$_"};$x='null'};",`"$n`":$x"}

# P: the named properties of one object as a hashtable. L: the same for each object of a list; the
# leading comma returns the list as one object, so that 0 or 1 results stay a list.
function P($o,$p){$h=@{};foreach($k in $p -split ','){$h[$k]=$o.$k};$h}
function L($a,$p){$r=@();foreach($o in $a){$r+=(P $o $p)};,$r}

# C: a WQL query ("class" may carry a WHERE clause) as a list of hashtables.
function C($c,$p,$n='root\cimv2'){L @(& $G -Query "SELECT $p FROM $c" -Namespace $n) $p}

function W {(New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher()}

'{"probe":"custode-windows","format":1'
S ps {"$($PSVersionTable.PSVersion)"}
S time {[DateTime]::UtcNow}

# Memory in KB as Win32_OperatingSystem reports it; the page file stands for swap.
# Version is major.minor.build (6.1.7601, 10.0.17763).
S os {$o=(C Win32_OperatingSystem 'Caption,Version,BuildNumber,ProductType,LastBootUpTime,TotalVisibleMemorySize,FreePhysicalMemory,SizeStoredInPagingFiles,FreeSpaceInPagingFiles')[0];$script:T=$o.ProductType;$o}

S cpu {C Win32_Processor 'LoadPercentage,NumberOfLogicalProcessors'}

S disks {C 'Win32_LogicalDisk WHERE DriveType=3' 'DeviceID,Size,FreeSpace,VolumeName,FileSystem'}

# Automatic services not running, with what the parser needs to skip those Windows stops by
# design: trigger-start services (a TriggerInfo key) and delayed-start ones (DelayedAutostart=1).
S services {$k='HKLM:\SYSTEM\CurrentControlSet\Services\';$r=C "Win32_Service WHERE StartMode='Auto' AND State<>'Running'" 'Name,DisplayName,State,ExitCode'
foreach($h in $r){$h.Trigger=Test-Path ($k+$h.Name+'\TriggerInfo');$h.Delayed=(gp ($k+$h.Name) -ea 0).DelayedAutostart};,$r}

# Two flags, any of them true means a reboot is pending.
S reboot {$k='HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\';Test-Path ($k+'Component Based Servicing\RebootPending'),($k+'WindowsUpdate\Auto Update\RebootRequired')}

# Null, not an error, where the Defender module does not exist (2008 R2, 2012 R2, Windows 7).
S defender {if(gcm Get-MpComputerStatus -ea 0){P (Get-MpComputerStatus) 'AMServiceEnabled,AntivirusEnabled,RealTimeProtectionEnabled,AntivirusSignatureLastUpdated,AntivirusSignatureAge,AMRunningMode'}}

# root\SecurityCenter2 exists on client SKUs only (ProductType 1); null on servers.
S securitycenter {if($T -eq 1){C AntiVirusProduct 'displayName,productState' 'root\SecurityCenter2'}}

# Critical and error events of the System log over 24 h: counts (Group-Object names them
# "source, level") and the 10 newest, messages cut to 300 characters. PowerShell 2.0 reads them
# with Get-EventLog (its Get-WinEvent loses the messages on non-English systems), which knows no
# "critical": there they count as errors. "No events were found" (Get-WinEvent) and "No matches
# found" (Get-EventLog) mean zero events, not an error.
S events {$t=(Get-Date).AddHours(-24)
try{if($PSVersionTable.PSVersion.Major -gt 2){$p='ProviderName','Level','TimeCreated','Id';$e=@(Get-WinEvent -FilterHashtable @{LogName='System';Level=1,2;StartTime=$t} -MaxEvents 500)}
else{$p='Source','EntryType','TimeGenerated','EventID';$e=@(Get-EventLog System -EntryType Error -After $t -Newest 500)}}
catch{if($_.FullyQualifiedErrorId -notmatch 'NoMatchingEvents|NoEntriesFound'){throw};$e=@()}
$l=L @($e|select -f 10) ($p+'Message');foreach($h in $l){$m="$($h.Message)";if($m.Length -gt 300){$h.Message=$m.Substring(0,300)}}
@{Counts=L @($e|group $p[0..1]) 'Name,Count';Latest=$l}}

# Physical disks: Storage cmdlets from Windows Server 2012 / 8 on, else Win32_DiskDrive.Status.
S pdisks {if(gcm Get-PhysicalDisk -ea 0){L @(Get-PhysicalDisk) 'FriendlyName,Model,DeviceId,HealthStatus,OperationalStatus,MediaType'}else{C Win32_DiskDrive 'DeviceID,Model,Status'}}

# Newest successful installation (Operation 1, ResultCode 2) in the Windows Update history, not
# counting Definition Updates (category e0789628-...): daily antivirus signatures would hide
# months without an OS update. History dates are UTC without a zone: written as yyyy-MM-ddTHH:mm:ss.
# No such entry (updates installed by other means): the newest Get-HotFix InstalledOn.
S history {$s=W;$d=$null;$c=$s.GetTotalHistoryCount()
if($c){foreach($e in $s.QueryHistory(0,$c)){if($e.Operation -eq 1 -and $e.ResultCode -eq 2 -and $e.Date -gt $d -and !(@($e.Categories|%{$_.CategoryID}) -like 'e0789628*')){$d=$e.Date}}}
if($d){@{Last=$d.ToString('s')}}else{@{HotFix=@(Get-HotFix|?{$_.InstalledOn}|sort InstalledOn)[-1].InstalledOn}}}

# Pending updates; security ones have an MSRC severity or the Security Updates classification
# (matched by its id 0fa1201d-..., as category names are localised). Can take minutes: last.
if($U -ne 0){S updates {$r=(W).Search("IsInstalled=0 and IsHidden=0 and Type='Software'").Updates;$t=@();$n=0
foreach($u in $r){if($u.MsrcSeverity -match 'Critical|Important' -or @($u.Categories|%{$_.CategoryID}) -like '0fa1201d*'){$n++};if($t.Count -lt 20){$t+=$u.Title}}
@{Count=$r.Count;Security=$n;Titles=$t}}}

',"errors":'+(J $Z)
',"end":true}'
