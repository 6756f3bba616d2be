; SafeConsult for Windows: Inno Setup 6 definition (docs/admin-guide.md, "Deploying on Windows").
;
; Built by .github/workflows/windows-installer.yml on a Windows runner:
;   iscc /DAppVersion=0.2.0 installers\windows\safeconsult.iss
; from the PyInstaller bundle in installers\dist\safeconsult (installers/safeconsult.spec).
;
; Machine-wide, silent deployment (SCCM, Intune, GPO start-up script):
;   safeconsult-0.2.0-setup.exe /VERYSILENT /SUPPRESSMSGBOXES /NORESTART /LOG=C:\Windows\Temp\safeconsult-setup.log
;       [/POLICY=\\server\share\policy.json] [/TRUSTEDKEYS=\\server\share\trusted-keys.json]
;       [/UPDATEROOT=\\server\share\update-root.json]
; The three optional files are copied to %ProgramData%\SafeConsult, where the client reads its
; machine policy; they stay on uninstall (they are IT's). That folder is writable by
; administrators and SYSTEM only: users cannot change the policy.
; Uninstall silently: "%ProgramFiles%\SafeConsult\unins000.exe" /VERYSILENT /SUPPRESSMSGBOXES

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\dist\safeconsult"
#endif

[Setup]
; Never change AppId: upgrades and uninstall find earlier installs by it.
AppId={{5B3C6E0A-8F2D-4C61-9A57-3E1D2B9C7F40}
AppName=SafeConsult
AppVersion={#AppVersion}
AppVerName=SafeConsult {#AppVersion}
AppPublisher=SafeConsult
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\SafeConsult
DefaultGroupName=SafeConsult
DisableDirPage=yes
DisableProgramGroupPage=yes
DisableReadyPage=yes
; Machine-wide only: per-user installs would escape IT's policy location and updates.
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0.17763
OutputDir=..\dist
OutputBaseFilename=safeconsult-{#AppVersion}-setup
SetupIconFile=..\..\resources\icons\safeconsult.ico
UninstallDisplayIcon={app}\safeconsult.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
CloseApplications=force
RestartApplications=no
SetupLogging=yes
; Authenticode: the workflow signs the setup and the uninstaller through this tool, e.g.
;   iscc "/Ssigntool=signtool.exe sign /fd sha256 /tr http://timestamp.digicert.com /td sha256 /f cert.pfx /p PASSWORD $f" ...
; Without /S the installer is built unsigned (a local test build).
#ifdef SignTool
SignTool=signtool
SignedUninstaller=yes
#endif

[Languages]
Name: "en"; MessagesFile: "compiler:Default.isl"
; The setup's own texts: English. (Simplified Chinese needs ChineseSimplified.isl, which not
; every Inno Setup release ships; the client itself follows the Windows display language.)

[Dirs]
; The machine policy folder: administrators and SYSTEM may write, users only read.
Name: "{commonappdata}\SafeConsult"; Permissions: admins-full system-full users-readexec; Flags: uninsneveruninstall

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs
; IT's files, given on the command line; never removed by the uninstaller.
Source: "{param:POLICY}"; DestDir: "{commonappdata}\SafeConsult"; DestName: "policy.json"; Flags: external uninsneveruninstall; Check: HasParam('POLICY')
Source: "{param:TRUSTEDKEYS}"; DestDir: "{commonappdata}\SafeConsult"; DestName: "trusted-keys.json"; Flags: external uninsneveruninstall; Check: HasParam('TRUSTEDKEYS')
Source: "{param:UPDATEROOT}"; DestDir: "{commonappdata}\SafeConsult"; DestName: "update-root.json"; Flags: external uninsneveruninstall; Check: HasParam('UPDATEROOT')

[Icons]
Name: "{commonprograms}\SafeConsult"; Filename: "{app}\safeconsult.exe"; AppUserModelID: "SafeConsult.Client"

[Run]
; Interactive installs only: silent deployments do not start the client.
Filename: "{app}\safeconsult.exe"; Description: "{cm:LaunchProgram,SafeConsult}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Only what the installer put in {app}; user data under %LOCALAPPDATA% and IT's policy stay.
Type: filesandordirs; Name: "{app}\_internal"

[Code]
function HasParam(Name: String): Boolean;
begin
  Result := ExpandConstant('{param:' + Name + '|}') <> '';
end;

procedure CurStepChanged(CurStep: TSetupStep);
var
  Code: Integer;
begin
  if CurStep = ssPostInstall then
  begin
    { The installed bundle checks itself; the result goes to the setup log (/LOG). }
    if Exec(ExpandConstant('{app}\safeconsult-cli.exe'), '--self-test', ExpandConstant('{app}'),
            SW_HIDE, ewWaitUntilTerminated, Code) then
      Log(Format('SafeConsult self-test exit code: %d', [Code]))
    else
      Log('SafeConsult self-test could not be started');
  end;
end;
