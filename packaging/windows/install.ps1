<#
.SYNOPSIS
    Install Custode as a Windows service on a comune's server (Windows Server 2012 R2 and newer).

.DESCRIPTION
    1. Python from its official installer (python.org), for all users, its Authenticode signature checked
       (signer "Python Software Foundation") before it runs; an installer already on disk may be given.
    2. A virtual environment under -InstallDir with the Custode wheel (and pywin32, which the service needs).
    3. The config at %ProgramData%\Custode\custode.yaml (a commented starter when there is none), readable only by
       SYSTEM and the Administrators: it may name secrets' files.
    4. The web config (TLS, basic auth) when -WebConfig is given, copied next to it.
    5. The service "Custode" (automatic start) through `custode service install`, then started.
    6. A firewall rule that lets only the Prometheus server(s) of -AllowFrom reach the port.
    7. A check that /ready answers.
    Run it again to upgrade: the wheel is reinstalled, config and state are kept.

    Tested on Linux only: parsed by tree-sitter-powershell in tests/test_powershell_parse.py. The README says what
    has and has not run on Windows.

.EXAMPLE
    .\install.ps1 -Wheel .\custode-0.9.0-py3-none-any.whl -AllowFrom 10.0.5.20
#>
param(
    [Parameter(Mandatory = $true)] [string] $Wheel,
    [string] $PythonVersion = "3.11.9",
    [string] $PythonInstaller = "",
    [string] $InstallDir = "$env:ProgramFiles\Custode",
    [string] $WebConfig = "",
    [int] $Port = 10191,
    [string[]] $AllowFrom = @(),
    [switch] $NoFirewall
)

$ErrorActionPreference = "Stop"

function Fail([string] $Message) {
    Write-Host "custode install: $Message" -ForegroundColor Red
    exit 1
}

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Fail "run this script from an elevated PowerShell (Run as administrator)"
}
if (-not (Test-Path -LiteralPath $Wheel)) {
    Fail "the wheel '$Wheel' does not exist; build it with 'python -m build --wheel' or take it from the release"
}
if ($AllowFrom.Count -eq 0 -and -not $NoFirewall) {
    Fail "give -AllowFrom with the Prometheus server's address (e.g. -AllowFrom 10.0.5.20), or -NoFirewall"
}

# --- 1. Python ------------------------------------------------------------------------------------------------
$pythonDir = Join-Path $env:ProgramFiles ("Python" + ($PythonVersion.Split(".")[0..1] -join ""))
$python = Join-Path $pythonDir "python.exe"
if (-not (Test-Path -LiteralPath $python)) {
    if ($PythonInstaller -eq "") {
        $PythonInstaller = Join-Path $env:TEMP "python-$PythonVersion-amd64.exe"
        $url = "https://www.python.org/ftp/python/$PythonVersion/python-$PythonVersion-amd64.exe"
        Write-Host "Downloading $url"
        [Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12
        (New-Object Net.WebClient).DownloadFile($url, $PythonInstaller)
    }
    $signature = Get-AuthenticodeSignature -FilePath $PythonInstaller
    if ($signature.Status -ne "Valid" -or $signature.SignerCertificate.Subject -notlike "*Python Software Foundation*") {
        Fail "the Python installer '$PythonInstaller' is not signed by the Python Software Foundation ($($signature.Status)); download it again from python.org"
    }
    Write-Host "Installing Python $PythonVersion into $pythonDir"
    $arguments = "/quiet InstallAllUsers=1 PrependPath=0 Include_test=0 Include_launcher=0 TargetDir=`"$pythonDir`""
    $setup = Start-Process -FilePath $PythonInstaller -ArgumentList $arguments -Wait -PassThru
    if ($setup.ExitCode -ne 0) {
        Fail "the Python installer ended with code $($setup.ExitCode); see %TEMP%\Python*.log"
    }
}

# --- 2. the virtual environment and the wheel ------------------------------------------------------------------
$venv = Join-Path $InstallDir "venv"
$custode = Join-Path $venv "Scripts\custode.exe"
if (-not (Test-Path -LiteralPath (Join-Path $venv "Scripts\python.exe"))) {
    & $python -m venv $venv
    if ($LASTEXITCODE -ne 0) { Fail "could not create the virtual environment in $venv" }
}
$venvPython = Join-Path $venv "Scripts\python.exe"
$service = Get-Service -Name "Custode" -ErrorAction SilentlyContinue
if ($service -ne $null -and $service.Status -eq "Running") {
    Write-Host "Stopping the running service for the upgrade"
    & $custode service stop
}
& $venvPython -m pip install --upgrade --disable-pip-version-check $Wheel "pywin32>=306"
if ($LASTEXITCODE -ne 0) { Fail "pip could not install $Wheel; see the messages above" }
# pywin32's service host needs its DLLs where the service control manager finds them
& $venvPython (Join-Path $venv "Scripts\pywin32_postinstall.py") -install -silent | Out-Null

# --- 3. the config, readable by SYSTEM and the Administrators only ----------------------------------------------
$dataDir = Join-Path $env:ProgramData "Custode"
if (-not (Test-Path -LiteralPath $dataDir)) { New-Item -ItemType Directory -Path $dataDir | Out-Null }
$config = Join-Path $dataDir "custode.yaml"
if (-not (Test-Path -LiteralPath $config)) {
    & $custode config init comune --output $config
    if ($LASTEXITCODE -ne 0) { Fail "could not write the starter config $config" }
}
& icacls.exe $dataDir /inheritance:r /grant:r "*S-1-5-18:(OI)(CI)F" "*S-1-5-32-544:(OI)(CI)F" | Out-Null

# --- 4. the web config ------------------------------------------------------------------------------------------
if ($WebConfig -ne "") {
    if (-not (Test-Path -LiteralPath $WebConfig)) { Fail "the web config '$WebConfig' does not exist" }
    Copy-Item -LiteralPath $WebConfig -Destination (Join-Path $dataDir "web.yml") -Force
    Write-Host "Web config copied to $dataDir\web.yml: set agent.web_config_file to it in $config"
}
& $custode config check $config
if ($LASTEXITCODE -ne 0) { Fail "the config $config is not valid: fix what the lines above say, then run this again" }

# --- 5. the service -----------------------------------------------------------------------------------------------
if ($service -eq $null) {
    & $custode service install
    if ($LASTEXITCODE -ne 0) { Fail "custode service install failed; see the messages above" }
}
& $custode service start
if ($LASTEXITCODE -ne 0) { Fail "the service did not start; see the Application event log (source Custode)" }

# --- 6. the firewall ------------------------------------------------------------------------------------------------
if (-not $NoFirewall) {
    $rule = "Custode metrics (TCP $Port)"
    Get-NetFirewallRule -DisplayName $rule -ErrorAction SilentlyContinue | Remove-NetFirewallRule
    New-NetFirewallRule -DisplayName $rule -Direction Inbound -Protocol TCP -LocalPort $Port `
        -RemoteAddress $AllowFrom -Action Allow -Profile @("Domain", "Private") | Out-Null
}

# --- 7. the check ---------------------------------------------------------------------------------------------------
$ready = $false
for ($i = 0; $i -lt 30 -and -not $ready; $i++) {
    try {
        $answer = Invoke-WebRequest -UseBasicParsing -Uri "http://127.0.0.1:$Port/ready" -TimeoutSec 2
        $ready = $answer.StatusCode -eq 200
    } catch {
        Start-Sleep -Seconds 1
    }
}
if (-not $ready) {
    Fail "the service runs but http://127.0.0.1:$Port/ready does not answer 200 (with a web config, try https)"
}
Write-Host "Custode is installed and running: http://<this server>:$Port/metrics (config $config)"
