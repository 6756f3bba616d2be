<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>AboutDialog</name>
    <message>
        <source>About SafeConsult</source>
        <translation>关于 SafeConsult</translation>
    </message>
    <message>
        <source>Version</source>
        <translation>版本</translation>
    </message>
    <message>
        <source>Machine policy</source>
        <translation>本机策略</translation>
    </message>
    <message>
        <source>Built-in defaults</source>
        <translation>内置默认值</translation>
    </message>
    <message>
        <source>Policy signed by</source>
        <translation>策略签署者</translation>
    </message>
    <message>
        <source>Not applicable</source>
        <translation>不适用</translation>
    </message>
    <message>
        <source>Not signed</source>
        <translation>未签名</translation>
    </message>
    <message>
        <source>Policy problem</source>
        <translation>策略问题</translation>
    </message>
    <message>
        <source>Data location</source>
        <translation>数据位置</translation>
    </message>
    <message>
        <source>Server</source>
        <translation>服务器</translation>
    </message>
</context>
<context>
    <name>AdminView</name>
    <message>
        <source>Admin</source>
        <translation>管理</translation>
    </message>
    <message>
        <source>No devices waiting for approval</source>
        <translation>没有等待批准的设备</translation>
    </message>
    <message>
        <source>Enrolled devices, approval requests, revocation and remote wipe, and the audit trail will be managed here.</source>
        <translation>已注册的设备、批准请求、吊销与远程擦除，以及审计记录，都将在这里管理。</translation>
    </message>
    <message>
        <source>Until then, use the server&apos;s admin command (safeconsult-server admin).</source>
        <translation>在此之前，请使用服务器的管理命令（safeconsult-server admin）。</translation>
    </message>
</context>
<context>
    <name>ChatView</name>
    <message>
        <source>Chat</source>
        <translation>聊天</translation>
    </message>
    <message>
        <source>No conversations yet</source>
        <translation>暂无会话</translation>
    </message>
    <message>
        <source>Secure messages with your colleagues will appear here. They are encrypted on this device and can be read only by the members of the consult.</source>
        <translation>您与同事的安全消息将显示在这里。消息在本设备上加密，只有会诊成员才能阅读。</translation>
    </message>
    <message>
        <source>Open a consult to start a conversation with its members.</source>
        <translation>打开一个会诊，即可与其成员开始对话。</translation>
    </message>
</context>
<context>
    <name>ConsultsView</name>
    <message>
        <source>Consults</source>
        <translation>会诊</translation>
    </message>
    <message>
        <source>No consults yet</source>
        <translation>暂无会诊</translation>
    </message>
    <message>
        <source>Consults you are invited to will be listed here, with their members and start time. You can join a video consult from this list.</source>
        <translation>您受邀参加的会诊将列在这里，并显示成员和开始时间。您可以从此列表加入视频会诊。</translation>
    </message>
    <message>
        <source>When a colleague invites you, the consult appears here without a restart.</source>
        <translation>同事邀请您后，会诊会直接出现在这里，无需重新启动。</translation>
    </message>
</context>
<context>
    <name>DeviceNotice</name>
    <message>
        <source>A wipe of this workstation&apos;s SafeConsult data was interrupted and has now been completed.</source>
        <translation>本工作站 SafeConsult 数据的擦除曾被中断，现已完成。</translation>
    </message>
</context>
<context>
    <name>ImagesView</name>
    <message>
        <source>Images</source>
        <translation>影像</translation>
    </message>
    <message>
        <source>No images shared with you</source>
        <translation>暂无与您共享的影像</translation>
    </message>
    <message>
        <source>Medical images (DICOM series) shared in your consults will be listed here and open in the viewer.</source>
        <translation>会诊中共享的医学影像（DICOM 序列）将列在这里，并可在查看器中打开。</translation>
    </message>
    <message>
        <source>Images are stored encrypted on this device and removed when their retention period ends.</source>
        <translation>影像在本设备上加密保存，保留期满后自动删除。</translation>
    </message>
</context>
<context>
    <name>LoginView</name>
    <message>
        <source>Sign in to SafeConsult</source>
        <translation>登录 SafeConsult</translation>
    </message>
    <message>
        <source>Use your hospital user name and password, and the 6‑digit code from your authenticator app.</source>
        <translation>请使用医院的用户名和密码，以及身份验证器应用中的 6 位验证码。</translation>
    </message>
    <message>
        <source>&amp;User name</source>
        <translation>用户名(&amp;U)</translation>
    </message>
    <message>
        <source>&amp;Password</source>
        <translation>密码(&amp;P)</translation>
    </message>
    <message>
        <source>Authenticator &amp;code</source>
        <translation>验证码(&amp;C)</translation>
    </message>
    <message>
        <source>6 digits</source>
        <translation>6 位数字</translation>
    </message>
    <message>
        <source>User name</source>
        <translation>用户名</translation>
    </message>
    <message>
        <source>Password</source>
        <translation>密码</translation>
    </message>
    <message>
        <source>Authenticator code</source>
        <translation>验证码</translation>
    </message>
    <message>
        <source>Preparing this workstation…</source>
        <translation>正在准备本工作站…</translation>
    </message>
    <message>
        <source>Signing in…</source>
        <translation>正在登录…</translation>
    </message>
    <message>
        <source>Sign in</source>
        <translation>登录</translation>
    </message>
    <message>
        <source>Server: %1</source>
        <translation>服务器：%1</translation>
    </message>
    <message>
        <source>This workstation is waiting for IT&apos;s approval. Read this device fingerprint to IT:</source>
        <translation>本工作站正在等待信息科批准。请将以下设备指纹告知信息科：</translation>
    </message>
    <message>
        <source>Enter your user name.</source>
        <translation>请输入用户名。</translation>
    </message>
    <message>
        <source>Enter your password.</source>
        <translation>请输入密码。</translation>
    </message>
    <message>
        <source>Enter the 6-digit code from your authenticator app.</source>
        <translation>请输入身份验证器应用中的 6 位验证码。</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>This language is not installed. Run the set-up script again, or contact IT.</source>
        <translation>此语言尚未安装。请重新运行安装脚本，或联系信息科。</translation>
    </message>
    <message>
        <source>Your preference could not be saved and applies until you close SafeConsult.</source>
        <translation>无法保存您的偏好设置；它在您关闭 SafeConsult 之前有效。</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <source>Sign &amp;out</source>
        <translation>退出登录(&amp;O)</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>退出(&amp;Q)</translation>
    </message>
    <message>
        <source>&amp;View</source>
        <translation>视图(&amp;V)</translation>
    </message>
    <message>
        <source>&amp;Language</source>
        <translation>语言(&amp;L)</translation>
    </message>
    <message>
        <source>&amp;Theme</source>
        <translation>主题(&amp;T)</translation>
    </message>
    <message>
        <source>Follow &amp;system</source>
        <translation>跟随系统(&amp;S)</translation>
    </message>
    <message>
        <source>&amp;Light</source>
        <translation>浅色(&amp;L)</translation>
    </message>
    <message>
        <source>&amp;Dark</source>
        <translation>深色(&amp;D)</translation>
    </message>
    <message>
        <source>&amp;Help</source>
        <translation>帮助(&amp;H)</translation>
    </message>
    <message>
        <source>&amp;About SafeConsult</source>
        <translation>关于 SafeConsult(&amp;A)</translation>
    </message>
</context>
<context>
    <name>NotificationArea</name>
    <message>
        <source>Dismiss</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Notification</source>
        <translation>通知</translation>
    </message>
</context>
<context>
    <name>SafeConsultError</name>
    <message>
        <source>Something went wrong.</source>
        <translation>出现了问题。</translation>
    </message>
    <message>
        <source>The machine policy could not be read; safe defaults are in force.</source>
        <translation>无法读取本机策略；已启用安全的默认设置。</translation>
    </message>
    <message>
        <source>The SafeConsult server cannot be reached. Check the network and try again.</source>
        <translation>无法连接 SafeConsult 服务器。请检查网络后重试。</translation>
    </message>
    <message>
        <source>The server&apos;s certificate is not the one this workstation trusts. Do not continue; contact IT.</source>
        <translation>服务器证书不是本工作站信任的证书。请勿继续操作，并联系信息科。</translation>
    </message>
    <message>
        <source>The server refused the request.</source>
        <translation>服务器拒绝了该请求。</translation>
    </message>
    <message>
        <source>The server sent an answer this version of SafeConsult does not understand.</source>
        <translation>服务器返回的应答无法被此版本的 SafeConsult 识别。</translation>
    </message>
    <message>
        <source>This workstation&apos;s secure key storage could not be used. Contact IT.</source>
        <translation>无法使用本工作站的安全密钥存储。请联系信息科。</translation>
    </message>
    <message>
        <source>No secure key storage exists on this machine (no OS keyring is available), so SafeConsult cannot keep patient data here. Contact IT, or use kiosk mode.</source>
        <translation>本机没有安全密钥存储（没有可用的系统密钥环），因此 SafeConsult 无法在此保存患者数据。请联系信息科，或使用共享设备（kiosk）模式。</translation>
    </message>
    <message>
        <source>This workstation&apos;s device identity could not be opened (it may have been copied from another machine). Sign in again to enroll this workstation.</source>
        <translation>无法打开本工作站的设备身份（它可能是从另一台计算机复制来的）。请重新登录以注册本工作站。</translation>
    </message>
    <message>
        <source>This device&apos;s identity could not be opened. Contact IT to re-enroll it.</source>
        <translation>无法打开此设备的身份。请联系信息科重新注册。</translation>
    </message>
    <message>
        <source>The local encrypted cache could not be used.</source>
        <translation>无法使用本地加密缓存。</translation>
    </message>
    <message>
        <source>The local encrypted cache cannot be read on this device. It will be rebuilt from the server; nothing on the server is lost.</source>
        <translation>此设备无法读取本地加密缓存。缓存将从服务器重建；服务器上的数据不会丢失。</translation>
    </message>
    <message>
        <source>The local encrypted cache is an older copy than this device last used, which can mean it was tampered with. It will be rebuilt from the server; contact IT if this happens again.</source>
        <translation>本地加密缓存比此设备上次使用的版本更旧，这可能意味着它被篡改过。缓存将从服务器重建；如果再次发生，请联系信息科。</translation>
    </message>
    <message>
        <source>The local cache is busy (is SafeConsult open twice?). Try again.</source>
        <translation>本地缓存正忙（SafeConsult 是否打开了两次？）。请重试。</translation>
    </message>
    <message>
        <source>The disk is full, so the latest data could not be saved on this workstation. Free some space; nothing already saved was lost.</source>
        <translation>磁盘已满，最新数据无法保存到本工作站。请释放一些空间；已保存的数据不会丢失。</translation>
    </message>
    <message>
        <source>The username, password or authenticator code is not correct.</source>
        <translation>用户名、密码或验证码不正确。</translation>
    </message>
    <message>
        <source>Too many failed attempts: this account is locked for a while. Try again later or contact IT.</source>
        <translation>失败次数过多：此账户已被暂时锁定。请稍后再试，或联系信息科。</translation>
    </message>
    <message>
        <source>Too many attempts. Wait a moment, then try again.</source>
        <translation>尝试次数过多。请稍等片刻后再试。</translation>
    </message>
    <message>
        <source>This account is disabled. Contact IT.</source>
        <translation>此账户已停用。请联系信息科。</translation>
    </message>
    <message>
        <source>This workstation is enrolled and waiting for IT&apos;s approval. Give IT the device fingerprint shown below.</source>
        <translation>本工作站已注册，正在等待信息科批准。请将下方显示的设备指纹提供给信息科。</translation>
    </message>
    <message>
        <source>IT has revoked this workstation. Its SafeConsult data has been removed.</source>
        <translation>信息科已吊销本工作站。其 SafeConsult 数据已被删除。</translation>
    </message>
    <message>
        <source>This workstation&apos;s SafeConsult data was removed on IT&apos;s order.</source>
        <translation>本工作站的 SafeConsult 数据已按信息科的指令删除。</translation>
    </message>
    <message>
        <source>Enter a username, a password and the 6-digit authenticator code.</source>
        <translation>请输入用户名、密码和 6 位验证码。</translation>
    </message>
    <message>
        <source>The demo server could not be started. See the terminal for details.</source>
        <translation>无法启动演示服务器。详细信息请查看终端。</translation>
    </message>
</context>
<context>
    <name>SharedDeviceBanner</name>
    <message>
        <source>Shared device: you are signed out when this window closes, and nothing is kept on this computer.</source>
        <translation>共享设备：关闭此窗口即会退出登录，本计算机上不会保留任何数据。</translation>
    </message>
    <message>
        <source>Shared device</source>
        <translation>共享设备</translation>
    </message>
</context>
<context>
    <name>StatusIndicators</name>
    <message>
        <source>Offline</source>
        <translation>离线</translation>
    </message>
    <message>
        <source>Connecting…</source>
        <translation>正在连接…</translation>
    </message>
    <message>
        <source>Online</source>
        <translation>在线</translation>
    </message>
    <message>
        <source>Server certificate not trusted: contact IT</source>
        <translation>服务器证书不受信任：请联系信息科</translation>
    </message>
    <message>
        <source>Device not enrolled</source>
        <translation>设备未注册</translation>
    </message>
    <message>
        <source>Device awaiting IT approval</source>
        <translation>设备等待信息科批准</translation>
    </message>
    <message>
        <source>Device approved</source>
        <translation>设备已批准</translation>
    </message>
    <message>
        <source>Device revoked: contact IT</source>
        <translation>设备已被吊销：请联系信息科</translation>
    </message>
    <message>
        <source>SafeConsult data removed by IT</source>
        <translation>SafeConsult 数据已被信息科删除</translation>
    </message>
    <message>
        <source>Locks in %1</source>
        <translation>%1 后锁定</translation>
    </message>
</context>
<context>
    <name>TaskRunner</name>
    <message>
        <source>Something went wrong. The details were written to the log; if it happens again, contact IT.</source>
        <translation>出现了问题。详细信息已写入日志；如果再次发生，请联系信息科。</translation>
    </message>
</context>
<context>
    <name>Workspace</name>
    <message>
        <source>Physician</source>
        <translation>医生</translation>
    </message>
    <message>
        <source>Nurse</source>
        <translation>护士</translation>
    </message>
    <message>
        <source>Consultant</source>
        <translation>会诊专家</translation>
    </message>
    <message>
        <source>IT administrator</source>
        <translation>信息科管理员</translation>
    </message>
    <message>
        <source>Auditor</source>
        <translation>审计员</translation>
    </message>
    <message>
        <source>Signed in as %1 (%2)</source>
        <translation>已登录：%1（%2）</translation>
    </message>
    <message>
        <source>Areas</source>
        <translation>功能区</translation>
    </message>
</context>
</TS>
