# Connects kopia.exe with verified TLS, from the bundle files beside this script.
# See docs/vm-user-guide.md. Run: .\connect-windows.ps1
$ErrorActionPreference = 'Stop'
function Key($k) { Get-Content -Raw (Join-Path $PSScriptRoot $k) }
$re = '-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----'
foreach ($m in [regex]::Matches((Key 'ca.crt'), $re)) {
    $f = [IO.Path]::GetTempFileName()
    Set-Content $f $m.Value -Encoding Ascii
    Import-Certificate -FilePath $f -CertStoreLocation Cert:\CurrentUser\Root | Out-Null
    Remove-Item $f
}
$url = if ($env:BSLS_ENDPOINT) { $env:BSLS_ENDPOINT } else { (Key 'endpoint').Trim() }
if (Test-Path (Join-Path $PSScriptRoot 'password')) { $env:KOPIA_PASSWORD = Key 'password' }
try {
    kopia.exe repository connect server "--url=$url" "--override-username=$(Key 'username')" "--override-hostname=$(Key 'hostname')"
    if ($LASTEXITCODE) { throw "kopia exited with $LASTEXITCODE" }
} finally { Remove-Item Env:KOPIA_PASSWORD -ErrorAction Ignore }
