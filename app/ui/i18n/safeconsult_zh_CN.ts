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
        <source>Enrolled workstations: approve, log out, revoke or wipe them. Requests that need a second person: audit exports and audit policy changes.</source>
        <translation>已注册的工作站：批准、注销、吊销或擦除。需要第二人审批的请求：审计导出和审计策略变更。</translation>
    </message>
    <message>
        <source>Devices and approvals</source>
        <translation>设备与审批</translation>
    </message>
    <message>
        <source>Devices</source>
        <translation>设备</translation>
    </message>
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
        <source>Until then, use the server's admin command (safeconsult-server admin).</source>
        <translation>在此之前，请使用服务器的管理命令（safeconsult-server admin）。</translation>
    </message>
    <message>
        <source>Access review</source>
        <translation>访问审查</translation>
    </message>
    <message>
        <source>Approvals</source>
        <translation>审批</translation>
    </message>
    <message>
        <source>Requests that need a second person: audit exports and audit policy changes.</source>
        <translation>需要第二人批准的申请：审计导出和审计策略变更。</translation>
    </message>
    <message>
        <source>Who did what, on which device, for which consult: the server's tamper-evident audit log.</source>
        <translation>谁在哪台设备上对哪个会诊做了什么：服务器的防篡改审计日志。</translation>
    </message>
</context>
<context>
    <name>ChatView</name>
    <message>
        <source>Sharing a study was interrupted when SafeConsult stopped; it was not sent to the conversation. Share the study again.</source>
        <translation>SafeConsult 停止时，研究的共享被中断；它没有发送到会话中。请重新共享该研究。</translation>
    </message>
    <message>
        <source>Unlink the patient?</source>
        <translation>取消关联患者？</translation>
    </message>
    <message>
        <source>The room will no longer show this patient, for every member. Unlink?</source>
        <translation>此会诊室将不再为任何成员显示该患者。确定取消关联？</translation>
    </message>
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
    <message>
        <source>Invitation</source>
        <translation>邀请</translation>
    </message>
    <message>
        <source>New consult room (only you)</source>
        <translation>新会诊室（仅您一人）</translation>
    </message>
    <message>
        <source>Join this conversation to read and write messages.</source>
        <translation>加入此会话后即可阅读和发送消息。</translation>
    </message>
    <message>
        <source>You are no longer a member of this conversation.</source>
        <translation>您已不是此会话的成员。</translation>
    </message>
    <message>
        <source>Decide about the new device above before writing here: verify, accept or block it.</source>
        <translation>在此发送消息前，请先处理上方的新设备：验证、接受或屏蔽。</translation>
    </message>
    <message>
        <source>Offline: messages you write are kept encrypted on this device and sent when the connection returns.</source>
        <translation>离线：您写的消息会加密保存在本设备上，连接恢复后发送。</translation>
    </message>
    <message>
        <source>End-to-end encrypted</source>
        <translation>端到端加密</translation>
    </message>
    <message>
        <source>New consult room</source>
        <translation>新建会诊室</translation>
    </message>
    <message>
        <source>Invite a colleague by user name (you can invite more later):</source>
        <translation>按用户名邀请同事（之后可继续邀请）：</translation>
    </message>
    <message>
        <source>Invite to this conversation</source>
        <translation>邀请加入此会话</translation>
    </message>
    <message>
        <source>User name of the colleague to invite:</source>
        <translation>要邀请的同事的用户名：</translation>
    </message>
    <message>
        <source>Block this device?</source>
        <translation>屏蔽此设备？</translation>
    </message>
    <message>
        <source>%1&apos;s device %2 will receive no messages from you, and you will not read its messages. Block it?</source>
        <translation>%1 的设备 %2 将不再收到您的消息，您也不会阅读它发来的消息。确定屏蔽吗？</translation>
    </message>
    <message>
        <source>Conversations</source>
        <translation>会话</translation>
    </message>
    <message>
        <source>Start a conversation (Ctrl+N)</source>
        <translation>开始新会话 (Ctrl+N)</translation>
    </message>
    <message>
        <source>Invite…</source>
        <translation>邀请…</translation>
    </message>
    <message>
        <source>Join</source>
        <translation>加入</translation>
    </message>
    <message>
        <source>Members</source>
        <translation>成员</translation>
    </message>
    <message>
        <source>Choose a conversation on the left, or start a new consult room.</source>
        <translation>请在左侧选择一个会话，或新建会诊室。</translation>
    </message>
    <message>
        <source>It will be deleted for everyone in this conversation, on every device. Recall it?</source>
        <translation>它将从此对话中所有人的每台设备上删除。要撤回吗？</translation>
    </message>
    <message>
        <source>Recall this message?</source>
        <translation>撤回此消息？</translation>
    </message>
    <message>
        <source>Send a file</source>
        <translation>发送文件</translation>
    </message>
    <message>
        <source>Save the file as</source>
        <translation>文件另存为</translation>
    </message>
    <message>
        <source>File saved. That copy is not encrypted: keep it where patient data may be kept.</source>
        <translation>文件已保存。该副本未加密：请存放在允许保存患者数据的位置。</translation>
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
    <message>
        <source>Access</source>
        <translation>访问权限</translation>
    </message>
    <message>
        <source>Consult</source>
        <translation>会诊</translation>
    </message>
    <message>
        <source>Emergency access…</source>
        <translation>紧急访问…</translation>
    </message>
    <message>
        <source>Not a member, and a patient needs care now? Use Emergency access: it is recorded and reviewed by an auditor afterwards.</source>
        <translation>不是成员，但患者需要立即救治？请使用“紧急访问”：它会被记录，并由审计员事后审核。</translation>
    </message>
    <message>
        <source>Read-only access to a consult you are not a member of, for a limited time; recorded and reviewed</source>
        <translation>对您不是成员的会诊进行有时限的只读访问；会被记录和审核</translation>
    </message>
    <message>
        <source>Refresh</source>
        <translation>刷新</translation>
    </message>
    <message>
        <source>The consults you may open, your role in each and how long your access lasts. Access granted for a limited time ends on its own.</source>
        <translation>您可以打开的会诊、您在其中的角色以及访问期限。有时限的访问到期自动结束。</translation>
    </message>
    <message>
        <source>Your consults</source>
        <translation>您的会诊</translation>
    </message>
    <message>
        <source>Your role</source>
        <translation>您的角色</translation>
    </message>
</context>
<context>
    <name>DeviceNotice</name>
    <message>
        <source>A wipe of this workstation's SafeConsult data was interrupted and has now been completed.</source>
        <translation>本工作站 SafeConsult 数据的擦除曾被中断，现已完成。</translation>
    </message>
</context>
<context>
    <name>EcgView</name>
    <message>
        <source>%1 mm/s   %2 mm/mV   %3 Hz   %4</source>
        <translation>%1 mm/s   %2 mm/mV   %3 Hz   %4</translation>
    </message>
</context>
<context>
    <name>ImageCanvas</name>
    <message>
        <source>Loading…</source>
        <translation>正在加载…</translation>
    </message>
    <message>
        <source>%1°</source>
        <translation>%1°</translation>
    </message>
    <message>
        <source>%1 px (no pixel spacing)</source>
        <translation>%1 像素（无像素间距）</translation>
    </message>
    <message>
        <source>%1 mm</source>
        <translation>%1 mm</translation>
    </message>
    <message>
        <source>%1 (at detector)</source>
        <translation>%1（探测器平面）</translation>
    </message>
    <message>
        <source>Image %1 / %2</source>
        <translation>图像 %1 / %2</translation>
    </message>
    <message>
        <source>W %1  L %2</source>
        <translation>窗宽 %1  窗位 %2</translation>
    </message>
    <message>
        <source>Zoom %1%</source>
        <translation>缩放 %1%</translation>
    </message>
    <message>
        <source>Inverted</source>
        <translation>已反相</translation>
    </message>
    <message>
        <source>Cine %1 fps</source>
        <translation>电影 %1 帧/秒</translation>
    </message>
    <message>
        <source>Distance</source>
        <translation>距离</translation>
    </message>
    <message>
        <source>Angle</source>
        <translation>角度</translation>
    </message>
    <message>
        <source>Tool: %1</source>
        <translation>工具：%1</translation>
    </message>
    <message>
        <source>x %1  y %2  value %3</source>
        <translation>x %1  y %2  值 %3</translation>
    </message>
    <message>
        <source>x %1  y %2  stored %3  value %4</source>
        <translation>x %1  y %2  存储值 %3  值 %4</translation>
    </message>
</context>
<context>
    <name>ImagesView</name>
    <message>
        <source>Images</source>
        <translation>影像</translation>
    </message>
    <message>
        <source>No images open</source>
        <translation>未打开影像</translation>
    </message>
    <message>
        <source>Open DICOM files or a folder to read them here: series with thumbnails on the left, the viewer beside them.</source>
        <translation>打开 DICOM 文件或文件夹即可在此阅片：左侧为带缩略图的序列，右侧为查看器。</translation>
    </message>
    <message>
        <source>Every view carries a watermark with your name, this device, the time and the patient ID. Exports and prints carry it too and are recorded in the audit trail.</source>
        <translation>每个视图都带有水印：您的姓名、本设备、时间和患者 ID。导出和打印同样带水印，并记入审计日志。</translation>
    </message>
    <message>
        <source>Open files…</source>
        <translation>打开文件…</translation>
    </message>
    <message>
        <source>Open folder…</source>
        <translation>打开文件夹…</translation>
    </message>
    <message>
        <source>Window</source>
        <translation>窗宽窗位</translation>
    </message>
    <message>
        <source>From the file</source>
        <translation>来自文件</translation>
    </message>
    <message>
        <source>CT brain</source>
        <translation>CT 脑窗</translation>
    </message>
    <message>
        <source>CT lung</source>
        <translation>CT 肺窗</translation>
    </message>
    <message>
        <source>CT bone</source>
        <translation>CT 骨窗</translation>
    </message>
    <message>
        <source>CT abdomen</source>
        <translation>CT 腹部窗</translation>
    </message>
    <message>
        <source>CT mediastinum</source>
        <translation>CT 纵隔窗</translation>
    </message>
    <message>
        <source>Invert</source>
        <translation>反相</translation>
    </message>
    <message>
        <source>Fit</source>
        <translation>适应窗口</translation>
    </message>
    <message>
        <source>1:1</source>
        <translation>1:1</translation>
    </message>
    <message>
        <source>Rotate</source>
        <translation>旋转</translation>
    </message>
    <message>
        <source>Flip H</source>
        <translation>水平翻转</translation>
    </message>
    <message>
        <source>Flip V</source>
        <translation>垂直翻转</translation>
    </message>
    <message>
        <source>Pan</source>
        <translation>平移</translation>
    </message>
    <message>
        <source>Distance</source>
        <translation>距离</translation>
    </message>
    <message>
        <source>Angle</source>
        <translation>角度</translation>
    </message>
    <message>
        <source>Clear</source>
        <translation>清除</translation>
    </message>
    <message>
        <source>Cine</source>
        <translation>电影</translation>
    </message>
    <message>
        <source>Side by side</source>
        <translation>并排</translation>
    </message>
    <message>
        <source>Tags</source>
        <translation>标签</translation>
    </message>
    <message>
        <source>Export</source>
        <translation>导出</translation>
    </message>
    <message>
        <source>Export image…</source>
        <translation>导出图像…</translation>
    </message>
    <message>
        <source>Print to PDF…</source>
        <translation>打印为 PDF…</translation>
    </message>
    <message>
        <source>Export de-identified…</source>
        <translation>去标识化导出…</translation>
    </message>
    <message>
        <source>Image tools</source>
        <translation>影像工具</translation>
    </message>
    <message>
        <source>Open DICOM files</source>
        <translation>打开 DICOM 文件</translation>
    </message>
    <message>
        <source>DICOM files (*.dcm *.DCM *.dicom *.ima *.IMA);;All files (*)</source>
        <translation>DICOM 文件 (*.dcm *.DCM *.dicom *.ima *.IMA);;所有文件 (*)</translation>
    </message>
    <message>
        <source>Open a folder of DICOM files</source>
        <translation>打开 DICOM 文件夹</translation>
    </message>
    <message>
        <source>Opening…</source>
        <translation>正在打开…</translation>
    </message>
    <message>
        <source>%1 file(s) could not be opened: %2</source>
        <translation>%1 个文件无法打开：%2</translation>
    </message>
    <message>
        <source>No DICOM images were found there.</source>
        <translation>该位置没有找到 DICOM 影像。</translation>
    </message>
    <message>
        <source>Loading images %v / %m</source>
        <translation>正在加载影像 %v / %m</translation>
    </message>
    <message>
        <source>%1 image(s) of this series could not be decoded.</source>
        <translation>此序列中有 %1 幅图像无法解码。</translation>
    </message>
    <message>
        <source>Export image with watermark</source>
        <translation>导出带水印的图像</translation>
    </message>
    <message>
        <source>PNG image (*.png);;JPEG image (*.jpg *.jpeg)</source>
        <translation>PNG 图像 (*.png);;JPEG 图像 (*.jpg *.jpeg)</translation>
    </message>
    <message>
        <source>Exported with watermark to %1</source>
        <translation>已带水印导出到 %1</translation>
    </message>
    <message>
        <source>Print to PDF</source>
        <translation>打印为 PDF</translation>
    </message>
    <message>
        <source>PDF (*.pdf)</source>
        <translation>PDF (*.pdf)</translation>
    </message>
    <message>
        <source>Printed to %1</source>
        <translation>已打印到 %1</translation>
    </message>
    <message>
        <source>Only images opened from files can be exported de-identified.</source>
        <translation>只有从文件打开的影像才能去标识化导出。</translation>
    </message>
    <message>
        <source>Choose an empty folder for the de-identified copy</source>
        <translation>请为去标识化副本选择一个空文件夹</translation>
    </message>
    <message>
        <source>%1 file(s) de-identified (DICOM PS3.15 Basic Profile) into %2.</source>
        <translation>已将 %1 个文件去标识化（DICOM PS3.15 基本配置）到 %2。</translation>
    </message>
    <message>
        <source>%1 file(s) failed and were not written.</source>
        <translation>%1 个文件处理失败，未写入。</translation>
    </message>
    <message>
        <source>Check the pixels before sharing</source>
        <translation>共享前请检查像素内容</translation>
    </message>
    <message>
        <source>The header is de-identified, but the pixels may still identify the patient:</source>
        <translation>文件头已去标识化，但像素中仍可能含有可识别患者的信息：</translation>
    </message>
</context>
<context>
    <name>LockScreen</name>
    <message>
        <source>Locked</source>
        <translation>已锁定</translation>
    </message>
    <message>
        <source>Signed in as %1</source>
        <translation>已登录：%1</translation>
    </message>
    <message>
        <source>SafeConsult locked itself to protect patient data. Enter your password to go on where you left off.</source>
        <translation>为保护患者数据，SafeConsult 已自动锁定。输入密码即可从离开处继续。</translation>
    </message>
    <message>
        <source>&amp;Password</source>
        <translation>密码(&amp;P)</translation>
    </message>
    <message>
        <source>Password</source>
        <translation>密码</translation>
    </message>
    <message>
        <source>Checking…</source>
        <translation>正在验证…</translation>
    </message>
    <message>
        <source>Unlock</source>
        <translation>解锁</translation>
    </message>
    <message>
        <source>Sign out</source>
        <translation>退出登录</translation>
    </message>
    <message>
        <source>Enter your password.</source>
        <translation>请输入密码。</translation>
    </message>
    <message>
        <source>The password is not correct. Attempts left before you are signed out: %1</source>
        <translation>密码不正确。再失败 %1 次将退出登录。</translation>
    </message>
    <message>
        <source>Enter your PIN.</source>
        <translation>请输入 PIN。</translation>
    </message>
    <message>
        <source>P&amp;IN</source>
        <translation>PIN(&amp;I)</translation>
    </message>
    <message>
        <source>PIN</source>
        <translation>PIN</translation>
    </message>
    <message>
        <source>SafeConsult locked itself to protect patient data. Enter your PIN to go on where you left off.</source>
        <translation>为保护患者数据，SafeConsult 已自动锁定。输入 PIN 即可从离开处继续。</translation>
    </message>
    <message>
        <source>The PIN cannot be used any more: enter your password. Attempts left before you are signed out: %1</source>
        <translation>PIN 已不可再用：请输入密码。再失败 %1 次将退出登录。</translation>
    </message>
    <message>
        <source>The PIN is not correct. Attempts left before you are signed out: %1</source>
        <translation>PIN 不正确。再失败 %1 次将退出登录。</translation>
    </message>
    <message>
        <source>Use PIN instead</source>
        <translation>改用 PIN</translation>
    </message>
    <message>
        <source>Use password instead</source>
        <translation>改用密码</translation>
    </message>
</context>
<context>
    <name>LockWarning</name>
    <message>
        <source>Locking in %1 s – move the mouse to stay signed in</source>
        <translation>%1 秒后锁定 – 移动鼠标可保持登录</translation>
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
        <source>This workstation is waiting for IT's approval. Read this device fingerprint to IT:</source>
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
        <source>This computer's machine policy was refused, so SafeConsult runs on its safe defaults: %1 Please tell IT.</source>
        <translation>本机的机器策略被拒绝，SafeConsult 正以安全默认设置运行：%1 请告知 IT。</translation>
    </message>
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
        <source>S&amp;witch user</source>
        <translation>切换用户(&amp;W)</translation>
    </message>
    <message>
        <source>&amp;Lock now</source>
        <translation>立即锁定(&amp;L)</translation>
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
        <source>Calls must go through the hospital's relay, and it is not available.</source>
        <translation>通话必须经医院的中继进行，但该中继当前不可用。</translation>
    </message>
    <message>
        <source>That call has ended.</source>
        <translation>该通话已结束。</translation>
    </message>
    <message>
        <source>The host's device is not one this workstation trusts, so you cannot join.</source>
        <translation>主持人的设备不受本工作站信任，因此您无法加入。</translation>
    </message>
    <message>
        <source>You are already in this call.</source>
        <translation>您已在此通话中。</translation>
    </message>
    <message>
        <source>No video consult is running in this consult.</source>
        <translation>此会诊中没有正在进行的视频会诊。</translation>
    </message>
    <message>
        <source>That member has no device this workstation trusts, so they cannot be invited.</source>
        <translation>该成员没有本工作站信任的设备，因此无法邀请。</translation>
    </message>
    <message>
        <source>Only another member of this consult can be invited.</source>
        <translation>只能邀请此会诊的其他成员。</translation>
    </message>
    <message>
        <source>Only the host of the call can invite.</source>
        <translation>只有通话的主持人可以邀请。</translation>
    </message>
    <message>
        <source>They are no longer waiting to join.</source>
        <translation>对方已不在等候加入。</translation>
    </message>
    <message>
        <source>Enter the patient's name and an MRN of letters, digits, spaces or . / _ -</source>
        <translation>请输入患者姓名，以及由字母、数字、空格或 . / _ - 组成的病历号</translation>
    </message>
    <message>
        <source>Only physicians and consultants in this room can link it to a patient.</source>
        <translation>只有此会诊室中的医生和会诊医生可以将其关联到患者。</translation>
    </message>
    <message>
        <source>The study could not be shared.</source>
        <translation>无法共享该检查。</translation>
    </message>
    <message>
        <source>This study is not de-identified. Share the de-identified copy, or confirm that the identified study may go to this room.</source>
        <translation>此检查尚未去标识。请共享去标识副本，或确认含身份信息的检查可以发送到此会诊室。</translation>
    </message>
    <message>
        <source>This shared study was changed after it was sent, or its sender cannot be verified. It was not opened.</source>
        <translation>此共享检查在发送后被更改，或无法验证其发送者。未打开该检查。</translation>
    </message>
    <message>
        <source>The device that shared this study is not in your device list, so its signature cannot be checked. It was not opened.</source>
        <translation>共享此检查的设备不在您的设备列表中，无法检查其签名。未打开该检查。</translation>
    </message>
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
        <source>The server's certificate is not the one this workstation trusts. Do not continue; contact IT.</source>
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
        <source>This workstation's secure key storage could not be used. Contact IT.</source>
        <translation>无法使用本工作站的安全密钥存储。请联系信息科。</translation>
    </message>
    <message>
        <source>No secure key storage exists on this machine (no OS keyring is available), so SafeConsult cannot keep patient data here. Contact IT, or use kiosk mode.</source>
        <translation>本机没有安全密钥存储（没有可用的系统密钥环），因此 SafeConsult 无法在此保存患者数据。请联系信息科，或使用共享设备（kiosk）模式。</translation>
    </message>
    <message>
        <source>This workstation's device identity could not be opened (it may have been copied from another machine). Sign in again to enroll this workstation.</source>
        <translation>无法打开本工作站的设备身份（它可能是从另一台计算机复制来的）。请重新登录以注册本工作站。</translation>
    </message>
    <message>
        <source>This device's identity could not be opened. Contact IT to re-enroll it.</source>
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
        <source>This workstation is enrolled and waiting for IT's approval. Give IT the device fingerprint shown below.</source>
        <translation>本工作站已注册，正在等待信息科批准。请将下方显示的设备指纹提供给信息科。</translation>
    </message>
    <message>
        <source>IT has revoked this workstation. Its SafeConsult data has been removed.</source>
        <translation>信息科已吊销本工作站。其 SafeConsult 数据已被删除。</translation>
    </message>
    <message>
        <source>This workstation's SafeConsult data was removed on IT's order.</source>
        <translation>本工作站的 SafeConsult 数据已按信息科的指令删除。</translation>
    </message>
    <message>
        <source>Enter a username, a password and the 6-digit authenticator code.</source>
        <translation>请输入用户名、密码和 6 位验证码。</translation>
    </message>
    <message>
        <source>The password is not correct.</source>
        <translation>密码不正确。</translation>
    </message>
    <message>
        <source>Too many failed attempts: you have been signed out.</source>
        <translation>失败次数过多：您已退出登录。</translation>
    </message>
    <message>
        <source>The demo server could not be started. See the terminal for details.</source>
        <translation>无法启动演示服务器。详细信息请查看终端。</translation>
    </message>
    <message>
        <source>The image could not be opened.</source>
        <translation>无法打开该影像。</translation>
    </message>
    <message>
        <source>This file is not a DICOM image, or it is damaged beyond reading.</source>
        <translation>此文件不是 DICOM 影像，或已损坏到无法读取。</translation>
    </message>
    <message>
        <source>This DICOM file is incomplete (it may have been cut short while copying).</source>
        <translation>此 DICOM 文件不完整（可能在复制时被截断）。</translation>
    </message>
    <message>
        <source>This image is compressed in a format SafeConsult cannot decode.</source>
        <translation>此影像的压缩格式 SafeConsult 无法解码。</translation>
    </message>
    <message>
        <source>This DICOM file holds no image (it may be a report or a waveform).</source>
        <translation>此 DICOM 文件不含图像（可能是报告或波形）。</translation>
    </message>
    <message>
        <source>The image data in this file could not be decoded.</source>
        <translation>无法解码此文件中的图像数据。</translation>
    </message>
    <message>
        <source>This image is larger than SafeConsult will decode safely.</source>
        <translation>此影像过大，超出 SafeConsult 安全解码的范围。</translation>
    </message>
    <message>
        <source>Decoding this image took too long and was stopped.</source>
        <translation>解码此影像耗时过长，已停止。</translation>
    </message>
    <message>
        <source>This DICOM file holds no waveform.</source>
        <translation>此 DICOM 文件不含波形。</translation>
    </message>
    <message>
        <source>The file could not be de-identified; it was not exported.</source>
        <translation>无法对该文件去标识化；未导出。</translation>
    </message>
    <message>
        <source>The file could not be saved there. Choose another place.</source>
        <translation>文件无法保存到该位置。请选择其他位置。</translation>
    </message>
    <message>
        <source>This file is no longer on this workstation. Download it again.</source>
        <translation>此文件已不在本工作站上。请重新下载。</translation>
    </message>
    <message>
        <source>The file transfer was cancelled.</source>
        <translation>文件传输已取消。</translation>
    </message>
    <message>
        <source>This file was damaged or tampered with on the way, so it was not opened and nothing was kept. Ask the sender to send it again; tell IT if it happens again.</source>
        <translation>此文件在传输途中已损坏或被篡改，因此未打开，也未保留任何内容。请让发送者重新发送；如再次发生，请告知 IT。</translation>
    </message>
</context>
<context>
    <name>SeriesCard</name>
    <message>
        <source>ECG</source>
        <translation>心电图</translation>
    </message>
    <message>
        <source>%1 image(s)</source>
        <translation>%1 幅图像</translation>
    </message>
    <message>
        <source>Waveform</source>
        <translation>波形</translation>
    </message>
    <message>
        <source>No preview</source>
        <translation>无预览</translation>
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
    <message>
        <source>Switch user</source>
        <translation>切换用户</translation>
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
    <name>StudyHeader</name>
    <message>
        <source>MRN</source>
        <translation>病历号</translation>
    </message>
    <message>
        <source>Study date</source>
        <translation>检查日期</translation>
    </message>
</context>
<context>
    <name>TagPanel</name>
    <message>
        <source>Filter tags (keyword, tag or value)</source>
        <translation>筛选标签（关键字、标签号或值）</translation>
    </message>
    <message>
        <source>Tag</source>
        <translation>标签号</translation>
    </message>
    <message>
        <source>Keyword</source>
        <translation>关键字</translation>
    </message>
    <message>
        <source>VR</source>
        <translation>VR</translation>
    </message>
    <message>
        <source>Value</source>
        <translation>值</translation>
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
    <name>WatermarkOverlay</name>
    <message>
        <source>Viewed by %1 on %2</source>
        <translation>%1 于 %2 查看</translation>
    </message>
    <message>
        <source>Patient ID %1</source>
        <translation>患者 ID %1</translation>
    </message>
</context>
<context>
    <name>WipedView</name>
    <message>
        <source>SafeConsult data removed</source>
        <translation>SafeConsult 数据已删除</translation>
    </message>
    <message>
        <source>This workstation's SafeConsult data was removed on IT's order. Contact IT to use it again.</source>
        <translation>根据 IT 部门的指令，本工作站的 SafeConsult 数据已被删除。如需再次使用，请联系 IT 部门。</translation>
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
<context>
    <name>SetPinDialog</name>
    <message>
        <source>&amp;Repeat the PIN</source>
        <translation>再次输入 PIN(&amp;R)</translation>
    </message>
    <message>
        <source>A PIN cannot be set now. Your password still unlocks SafeConsult.</source>
        <translation>现在无法设置 PIN。仍可用密码解锁 SafeConsult。</translation>
    </message>
    <message>
        <source>Enter a PIN.</source>
        <translation>请输入 PIN。</translation>
    </message>
    <message>
        <source>New &amp;PIN</source>
        <translation>新 PIN(&amp;P)</translation>
    </message>
    <message>
        <source>New PIN</source>
        <translation>新 PIN</translation>
    </message>
    <message>
        <source>Not now</source>
        <translation>暂不设置</translation>
    </message>
    <message>
        <source>Repeat the PIN</source>
        <translation>再次输入 PIN</translation>
    </message>
    <message>
        <source>Set PIN</source>
        <translation>设置 PIN</translation>
    </message>
    <message>
        <source>Set an unlock PIN?</source>
        <translation>设置解锁 PIN？</translation>
    </message>
    <message>
        <source>Setting…</source>
        <translation>正在设置…</translation>
    </message>
    <message>
        <source>The PIN is forgotten when you sign out. After %1 wrong PINs only your password unlocks. Avoid repeated digits, runs such as 123456 and your card's PIN.</source>
        <translation>退出登录后 PIN 即被清除。PIN 输错 %1 次后只能用密码解锁。请勿使用重复数字、123456 这类连续数字或银行卡密码。</translation>
    </message>
    <message>
        <source>The two PINs are not the same. Enter them again.</source>
        <translation>两次输入的 PIN 不一致，请重新输入。</translation>
    </message>
    <message>
        <source>This PIN is too easy to guess. Avoid repeated digits and runs such as 123456.</source>
        <translation>此 PIN 太容易被猜到。请勿使用重复数字或 123456 这类连续数字。</translation>
    </message>
    <message>
        <source>Unlock PIN</source>
        <translation>解锁 PIN</translation>
    </message>
    <message>
        <source>Use at least %1 digits.</source>
        <translation>至少使用 %1 位数字。</translation>
    </message>
    <message>
        <source>Use at most %1 digits.</source>
        <translation>最多使用 %1 位数字。</translation>
    </message>
    <message>
        <source>Use digits only.</source>
        <translation>只能使用数字。</translation>
    </message>
    <message>
        <source>While you stay signed in, a PIN of at least %1 digits can unlock SafeConsult instead of your password.</source>
        <translation>在保持登录期间，可用至少 %1 位数字的 PIN 代替密码解锁 SafeConsult。</translation>
    </message>
</context>
<context>
    <name>ChatSearch</name>
    <message>
        <source>Search messages (Ctrl+F)</source>
        <translation>搜索消息 (Ctrl+F)</translation>
    </message>
    <message>
        <source>Searches the messages kept on this device; nothing is sent to the server</source>
        <translation>只搜索保存在本设备上的消息，不会向服务器发送任何内容</translation>
    </message>
    <message>
        <source>Search messages</source>
        <translation>搜索消息</translation>
    </message>
    <message>
        <source>Messages containing “%1”:</source>
        <translation>包含“%1”的消息：</translation>
    </message>
    <message>
        <source>No messages on this device contain “%1”.</source>
        <translation>本设备上没有包含“%1”的消息。</translation>
    </message>
</context>
<context>
    <name>ChatTexts</name>
    <message>
        <source>Verified</source>
        <translation>已验证</translation>
    </message>
    <message>
        <source>Blocked</source>
        <translation>已屏蔽</translation>
    </message>
    <message>
        <source>New device, not verified</source>
        <translation>新设备，未验证</translation>
    </message>
    <message>
        <source>Trusted under policy</source>
        <translation>按策略信任</translation>
    </message>
    <message>
        <source>Not verified (receives no messages)</source>
        <translation>未验证（不接收消息）</translation>
    </message>
    <message>
        <source>%1 said the emoji did not match. The device was not verified. If this happens again, call them and contact IT: someone may be intercepting.</source>
        <translation>%1 表示表情符号不一致，该设备未通过验证。如果再次发生，请致电对方并联系信息科：可能有人在拦截通信。</translation>
    </message>
    <message>
        <source>The emoji did not match, so the device was not verified. If this happens again, contact IT: someone may be intercepting.</source>
        <translation>表情符号不一致，因此该设备未通过验证。如果再次发生，请联系信息科：可能有人在拦截通信。</translation>
    </message>
    <message>
        <source>The verification took too long and was stopped. Start again when you are both ready.</source>
        <translation>验证耗时过长，已停止。双方准备好后请重新开始。</translation>
    </message>
    <message>
        <source>The security check failed: the device&apos;s keys did not match. The device was not verified. Contact IT.</source>
        <translation>安全检查失败：设备密钥不一致，该设备未通过验证。请联系信息科。</translation>
    </message>
    <message>
        <source>The verification stopped because of an unexpected message. Start again.</source>
        <translation>收到意外消息，验证已停止。请重新开始。</translation>
    </message>
    <message>
        <source>%1 cancelled the verification.</source>
        <translation>%1 取消了验证。</translation>
    </message>
    <message>
        <source>The verification was cancelled.</source>
        <translation>验证已取消。</translation>
    </message>
    <message>
        <source>User %1</source>
        <translation>用户 %1</translation>
    </message>
</context>
<context>
    <name>Composer</name>
    <message>
        <source>Write a message (Enter sends, Shift+Enter for a new line)</source>
        <translation>输入消息（Enter 发送，Shift+Enter 换行）</translation>
    </message>
    <message>
        <source>Message</source>
        <translation>消息</translation>
    </message>
    <message>
        <source>Send</source>
        <translation>发送</translation>
    </message>
    <message>
        <source>Attach</source>
        <translation>附件</translation>
    </message>
    <message>
        <source>Attachments are not available yet.</source>
        <translation>暂不支持附件。</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Editing your message</source>
        <translation>正在编辑您的消息</translation>
    </message>
    <message>
        <source>Notify again until each reader acknowledges it, even under do not disturb</source>
        <translation>在每位读者确认之前反复提醒，即使对方处于免打扰状态</translation>
    </message>
    <message>
        <source>Urgent</source>
        <translation>紧急</translation>
    </message>
    <message>
        <source>Send a file, end-to-end encrypted</source>
        <translation>发送文件（端到端加密）</translation>
    </message>
</context>
<context>
    <name>DeviceWarning</name>
    <message>
        <source>%1 has a new or changed device (%2)</source>
        <translation>%1 有一台新的或已更改的设备（%2）</translation>
    </message>
    <message>
        <source>It receives no messages until you decide. Verify it with %1 (best), or accept it after checking its fingerprint with them: %2</source>
        <translation>在您做出决定之前，它不会收到任何消息。请与 %1 一起验证（推荐），或与对方核对指纹后接受：%2</translation>
    </message>
    <message>
        <source>(%1 more after this one)</source>
        <translation>（之后还有 %1 台）</translation>
    </message>
    <message>
        <source>Verify…</source>
        <translation>验证…</translation>
    </message>
    <message>
        <source>Accept</source>
        <translation>接受</translation>
    </message>
    <message>
        <source>Trust this device without comparing emoji (you checked its fingerprint)</source>
        <translation>不比对表情符号直接信任此设备（您已核对其指纹）</translation>
    </message>
    <message>
        <source>Block</source>
        <translation>屏蔽</translation>
    </message>
    <message>
        <source>Never send messages to this device</source>
        <translation>永不向此设备发送消息</translation>
    </message>
</context>
<context>
    <name>MemberPanel</name>
    <message>
        <source>%1 (you)</source>
        <translation>%1（您）</translation>
    </message>
    <message>
        <source>%1 (invited)</source>
        <translation>%1（已邀请）</translation>
    </message>
    <message>
        <source>Device %1</source>
        <translation>设备 %1</translation>
    </message>
    <message>
        <source>Only this device</source>
        <translation>仅本设备</translation>
    </message>
    <message>
        <source>Choose a device to see its fingerprint or verify it.</source>
        <translation>选择一台设备以查看其指纹或进行验证。</translation>
    </message>
    <message>
        <source>Fingerprint: %1</source>
        <translation>指纹：%1</translation>
    </message>
    <message>
        <source>Members and devices</source>
        <translation>成员和设备</translation>
    </message>
    <message>
        <source>Verify…</source>
        <translation>验证…</translation>
    </message>
    <message>
        <source>Compare emoji with the device&apos;s owner to make sure nobody is in between</source>
        <translation>与设备所有者比对表情符号，确认通信没有被他人拦截</translation>
    </message>
    <message>
        <source>Block</source>
        <translation>屏蔽</translation>
    </message>
    <message>
        <source>Never send messages to this device</source>
        <translation>永不向此设备发送消息</translation>
    </message>
    <message>
        <source>%1 · %2</source>
        <translation>%1 · %2</translation>
    </message>
</context>
<context>
    <name>RoomList</name>
    <message>
        <source>New</source>
        <translation>新</translation>
    </message>
    <message>
        <source>%1, %2 unread</source>
        <translation>%1，%2 条未读</translation>
    </message>
</context>
<context>
    <name>Timeline</name>
    <message>
        <source>Waiting for the key from %1&apos;s device. This message will appear when it arrives.</source>
        <translation>正在等待 %1 的设备发送密钥。密钥到达后将显示此消息。</translation>
    </message>
    <message>
        <source>It could not be decrypted.</source>
        <translation>无法解密。</translation>
    </message>
    <message>
        <source>This message cannot be shown: %1</source>
        <translation>无法显示此消息：%1</translation>
    </message>
    <message>
        <source>Sent</source>
        <translation>已发送</translation>
    </message>
    <message>
        <source>Sending…</source>
        <translation>正在发送…</translation>
    </message>
    <message>
        <source>Queued: sends when you are back online</source>
        <translation>已排队：恢复联网后发送</translation>
    </message>
    <message>
        <source>Not sent</source>
        <translation>未发送</translation>
    </message>
    <message>
        <source>%1 · edited</source>
        <translation>%1 · 已编辑</translation>
    </message>
    <message>
        <source>Acknowledge</source>
        <translation>确认收到</translation>
    </message>
    <message>
        <source>Delivered</source>
        <translation>已送达</translation>
    </message>
    <message>
        <source>Delivered to %1 of %2, read by %3</source>
        <translation>已送达 %1/%2 人，%3 人已读</translation>
    </message>
    <message>
        <source>Edit</source>
        <translation>编辑</translation>
    </message>
    <message>
        <source>In reply to %1: %2</source>
        <translation>回复 %1：%2</translation>
    </message>
    <message>
        <source>In reply to a message not on this device</source>
        <translation>回复一条不在此设备上的消息</translation>
    </message>
    <message>
        <source>Message recalled</source>
        <translation>消息已撤回</translation>
    </message>
    <message>
        <source>Read</source>
        <translation>已读</translation>
    </message>
    <message>
        <source>Recall (delete for everyone)</source>
        <translation>撤回（为所有人删除）</translation>
    </message>
    <message>
        <source>Reply</source>
        <translation>回复</translation>
    </message>
    <message>
        <source>Urgent</source>
        <translation>紧急</translation>
    </message>
    <message>
        <source>Urgent · acknowledged</source>
        <translation>紧急 · 已确认</translation>
    </message>
</context>
<context>
    <name>VerificationDialog</name>
    <message>
        <source>Verification request</source>
        <translation>验证请求</translation>
    </message>
    <message>
        <source>%1 wants to verify your device with their device (%2). Accept only if you are in touch with %1 now, in person or by phone: you will compare seven emoji together.</source>
        <translation>%1 希望用其设备（%2）验证您的设备。只有在您此刻正与 %1 当面或通过电话联系时才接受：你们将一起比对七个表情符号。</translation>
    </message>
    <message>
        <source>Decline</source>
        <translation>拒绝</translation>
    </message>
    <message>
        <source>Verify %1&apos;s device</source>
        <translation>验证 %1 的设备</translation>
    </message>
    <message>
        <source>Waiting for %1 to accept the request on their device (%2).</source>
        <translation>正在等待 %1 在其设备（%2）上接受请求。</translation>
    </message>
    <message>
        <source>You confirmed. Waiting for %1 to compare and confirm on their side…</source>
        <translation>您已确认。正在等待 %1 在其设备上比对并确认…</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Compare with %1</source>
        <translation>与 %1 比对</translation>
    </message>
    <message>
        <source>Check with %1 that their device (%2) shows the same emoji in the same order: read them out to each other.</source>
        <translation>请与 %1 确认其设备（%2）以相同顺序显示相同的表情符号：互相读出来。</translation>
    </message>
    <message>
        <source>Device verified</source>
        <translation>设备已验证</translation>
    </message>
    <message>
        <source>✓ %1&apos;s device (%2) is verified. Messages to it are end-to-end encrypted to the device you checked.</source>
        <translation>✓ %1 的设备（%2）已验证。发给它的消息将端到端加密到您核对过的这台设备。</translation>
    </message>
    <message>
        <source>Not verified</source>
        <translation>未验证</translation>
    </message>
    <message>
        <source>Accept</source>
        <translation>接受</translation>
    </message>
    <message>
        <source>They match</source>
        <translation>一致</translation>
    </message>
    <message>
        <source>They don&apos;t match</source>
        <translation>不一致</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Compare numbers instead (no emoji on their screen)</source>
        <translation>改为比对数字（对方屏幕无法显示表情符号时）</translation>
    </message>
</context>
<context>
    <name>AccessReviewPanel</name>
    <message>
        <source>#</source>
        <translation>#</translation>
    </message>
    <message>
        <source>%1 alerts</source>
        <translation>%1 条警报</translation>
    </message>
    <message>
        <source>%1 by %2 on %3</source>
        <translation>%1，由 %2 于 %3</translation>
    </message>
    <message>
        <source>%1 entries (newest first)</source>
        <translation>%1 条记录（最新在前）</translation>
    </message>
    <message>
        <source>%1 waiting for review</source>
        <translation>%1 条待审核</translation>
    </message>
    <message>
        <source>&amp;Approve (justified)</source>
        <translation>批准（理由充分）(&amp;A)</translation>
    </message>
    <message>
        <source>&amp;Flag for follow-up</source>
        <translation>标记待跟进(&amp;F)</translation>
    </message>
    <message>
        <source>Access until</source>
        <translation>访问截止</translation>
    </message>
    <message>
        <source>Action</source>
        <translation>操作</translation>
    </message>
    <message>
        <source>Alerts</source>
        <translation>警报</translation>
    </message>
    <message>
        <source>Alerts (%1)</source>
        <translation>警报 (%1)</translation>
    </message>
    <message>
        <source>Approved</source>
        <translation>已批准</translation>
    </message>
    <message>
        <source>Audit log</source>
        <translation>审计日志</translation>
    </message>
    <message>
        <source>Bulk downloads/exports</source>
        <translation>批量下载/导出</translation>
    </message>
    <message>
        <source>CSV</source>
        <translation>CSV</translation>
    </message>
    <message>
        <source>Check chain</source>
        <translation>校验链</translation>
    </message>
    <message>
        <source>Consult / patient</source>
        <translation>会诊 / 患者</translation>
    </message>
    <message>
        <source>Count</source>
        <translation>次数</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>Download approved export</source>
        <translation>下载已批准的导出</translation>
    </message>
    <message>
        <source>Emergency access</source>
        <translation>紧急访问</translation>
    </message>
    <message>
        <source>Emergency access review</source>
        <translation>紧急访问审核</translation>
    </message>
    <message>
        <source>Emergency access review (%1)</source>
        <translation>紧急访问审核 (%1)</translation>
    </message>
    <message>
        <source>Export</source>
        <translation>导出</translation>
    </message>
    <message>
        <source>Export not saved.</source>
        <translation>导出未保存。</translation>
    </message>
    <message>
        <source>Export request #%1 was approved: download it once.</source>
        <translation>导出申请 #%1 已获批准：可下载一次。</translation>
    </message>
    <message>
        <source>Export saved: %1</source>
        <translation>导出已保存：%1</translation>
    </message>
    <message>
        <source>Exports are available at once. Each one is recorded in the audit log.</source>
        <translation>导出立即可用。每次导出都会记入审计日志。</translation>
    </message>
    <message>
        <source>Exports need a second person's approval (an IT administrator) before you can download them.</source>
        <translation>导出需经第二人（IT 管理员）批准后才能下载。</translation>
    </message>
    <message>
        <source>Exports the entries that match the filters of the Audit log tab. FHIR gives a Bundle of AuditEvent resources.</source>
        <translation>导出与“审计日志”页筛选条件匹配的记录。FHIR 格式为 AuditEvent 资源的 Bundle。</translation>
    </message>
    <message>
        <source>Export…</source>
        <translation>导出…</translation>
    </message>
    <message>
        <source>Failed logins</source>
        <translation>登录失败</translation>
    </message>
    <message>
        <source>Flagged</source>
        <translation>已标记</translation>
    </message>
    <message>
        <source>HL7 FHIR AuditEvent</source>
        <translation>HL7 FHIR AuditEvent</translation>
    </message>
    <message>
        <source>JSON lines</source>
        <translation>JSON Lines</translation>
    </message>
    <message>
        <source>New network</source>
        <translation>新网络</translation>
    </message>
    <message>
        <source>Out of hours</source>
        <translation>非工作时间</translation>
    </message>
    <message>
        <source>Outcome</source>
        <translation>结果</translation>
    </message>
    <message>
        <source>Reason given</source>
        <translation>所填理由</translation>
    </message>
    <message>
        <source>Refresh</source>
        <translation>刷新</translation>
    </message>
    <message>
        <source>Requested</source>
        <translation>申请时间</translation>
    </message>
    <message>
        <source>Review</source>
        <translation>审核</translation>
    </message>
    <message>
        <source>Reviewed</source>
        <translation>已审核</translation>
    </message>
    <message>
        <source>Reviewer's &amp;note</source>
        <translation>审核备注(&amp;N)</translation>
    </message>
    <message>
        <source>Rule</source>
        <translation>规则</translation>
    </message>
    <message>
        <source>Save the export</source>
        <translation>保存导出</translation>
    </message>
    <message>
        <source>Show signed-off</source>
        <translation>显示已审核</translation>
    </message>
    <message>
        <source>The export could not be written there. Choose another folder.</source>
        <translation>无法写入该位置。请选择其他文件夹。</translation>
    </message>
    <message>
        <source>Time</source>
        <translation>时间</translation>
    </message>
    <message>
        <source>User</source>
        <translation>用户</translation>
    </message>
    <message>
        <source>Waiting for a second approval (request #%1). An IT administrator must approve it; then download it here.</source>
        <translation>等待第二人批准（申请 #%1）。须由 IT 管理员批准，之后在此下载。</translation>
    </message>
    <message>
        <source>Waiting for review</source>
        <translation>待审核</translation>
    </message>
    <message>
        <source>What</source>
        <translation>内容</translation>
    </message>
    <message>
        <source>What you checked, and with whom</source>
        <translation>您核实了什么，与谁核实</translation>
    </message>
    <message>
        <source>The newest %1 of %2%3 matching entries: narrow the filters to see the others, or export them.</source>
        <translation>共 %2%3 条匹配记录，显示最新的 %1 条：缩小筛选范围以查看其他记录，或将其导出。</translation>
    </message>
</context>
<context>
    <name>AccessTexts</name>
    <message>
        <source>Emergency access until %1</source>
        <translation>紧急访问至 %1</translation>
    </message>
    <message>
        <source>Member</source>
        <translation>成员</translation>
    </message>
    <message>
        <source>No end date</source>
        <translation>无截止时间</translation>
    </message>
    <message>
        <source>Observer (read only)</source>
        <translation>观察者（只读）</translation>
    </message>
    <message>
        <source>Owner</source>
        <translation>所有者</translation>
    </message>
    <message>
        <source>Until %1</source>
        <translation>至 %1</translation>
    </message>
</context>
<context>
    <name>ApprovalsPanel</name>
    <message>
        <source>Users are added, disabled and reset with the server's admin command (safeconsult-server admin). You cannot approve your own request, and the audit trail itself is for auditors only.</source>
        <translation>用户的添加、停用和重置通过服务器的管理命令（safeconsult-server admin）完成。您不能批准自己的请求，审计记录本身仅供审计员查看。</translation>
    </message>
    <message>
        <source>Users</source>
        <translation>用户</translation>
    </message>
    <message>
        <source>&amp;Approve</source>
        <translation>批准(&amp;A)</translation>
    </message>
    <message>
        <source>&amp;Deny</source>
        <translation>拒绝(&amp;D)</translation>
    </message>
    <message>
        <source>Approving, revoking and wiping devices, and managing users, are done with the server's admin command (safeconsult-server admin) for now. You cannot approve your own request, and the audit trail itself is for auditors only.</source>
        <translation>目前设备的批准、吊销和擦除以及用户管理，请使用服务器的管理命令（safeconsult-server admin）。您不能批准自己的申请；审计记录本身仅供审计员查看。</translation>
    </message>
    <message>
        <source>Audit export</source>
        <translation>审计导出</translation>
    </message>
    <message>
        <source>Audit exports need a second person's approval: </source>
        <translation>审计导出需要第二人批准：</translation>
    </message>
    <message>
        <source>Audit policy</source>
        <translation>审计策略</translation>
    </message>
    <message>
        <source>Audit policy change</source>
        <translation>审计策略变更</translation>
    </message>
    <message>
        <source>Details</source>
        <translation>详情</translation>
    </message>
    <message>
        <source>Devices and users</source>
        <translation>设备和用户</translation>
    </message>
    <message>
        <source>Policy changes need a second IT administrator: </source>
        <translation>策略变更需要第二位 IT 管理员：</translation>
    </message>
    <message>
        <source>Refresh</source>
        <translation>刷新</translation>
    </message>
    <message>
        <source>Request</source>
        <translation>申请</translation>
    </message>
    <message>
        <source>Requested by</source>
        <translation>申请人</translation>
    </message>
    <message>
        <source>Waiting for your approval</source>
        <translation>等待您批准</translation>
    </message>
    <message>
        <source>Waiting for your approval (%1)</source>
        <translation>等待您批准 (%1)</translation>
    </message>
    <message>
        <source>When</source>
        <translation>时间</translation>
    </message>
    <message>
        <source>no</source>
        <translation>否</translation>
    </message>
    <message>
        <source>yes</source>
        <translation>是</translation>
    </message>
</context>
<context>
    <name>BreakGlassDialog</name>
    <message>
        <source>%1 characters (at least %2, at most %3)</source>
        <translation>%1 个字符（至少 %2，最多 %3）</translation>
    </message>
    <message>
        <source>&amp;Consult ID</source>
        <translation>会诊 ID(&amp;C)</translation>
    </message>
    <message>
        <source>&amp;Reason</source>
        <translation>理由(&amp;R)</translation>
    </message>
    <message>
        <source>Emergency access</source>
        <translation>紧急访问</translation>
    </message>
    <message>
        <source>Emergency access to a consult</source>
        <translation>紧急访问会诊</translation>
    </message>
    <message>
        <source>Give the reason for emergency access: at least %1 characters.</source>
        <translation>请填写紧急访问的理由：至少 %1 个字符。</translation>
    </message>
    <message>
        <source>Request emergency access</source>
        <translation>申请紧急访问</translation>
    </message>
    <message>
        <source>Use this only when a patient needs care now and you are not a member of the consult. You get read-only access for a limited time. Your name, this device, the time and your reason are recorded, and an auditor reviews every emergency access afterwards.</source>
        <translation>仅在患者需要立即救治而您不是该会诊成员时使用。您将获得有时限的只读访问。您的姓名、本设备、时间和理由都会被记录，每次紧急访问事后都由审计员审核。</translation>
    </message>
    <message>
        <source>Why you need access now, e.g. "Unresponsive patient in resus, need medication history"</source>
        <translation>为何现在需要访问，例如“抢救室患者无反应，需要用药史”</translation>
    </message>
</context>
<context>
    <name>ChainStatusLabel</name>
    <message>
        <source>Audit chain: not checked yet</source>
        <translation>审计链：尚未校验</translation>
    </message>
    <message>
        <source>device %1: %2 problems, gaps %3</source>
        <translation>设备 %1：%2 个问题，缺口 %3</translation>
    </message>
    <message>
        <source>first broken entry #%1 (%2)</source>
        <translation>首个损坏记录 #%1（%2）</translation>
    </message>
    <message>
        <source>✔ Audit chain verified: %1 entries; all %2 device chains intact</source>
        <translation>✔ 审计链已校验：%1 条记录；全部 %2 条设备链完好</translation>
    </message>
    <message>
        <source>✔ Audit chain verified: %1 entries; no device chains yet</source>
        <translation>✔ 审计链已校验：%1 条记录；尚无设备链</translation>
    </message>
    <message>
        <source>✖ Audit chain broken: </source>
        <translation>✖ 审计链已损坏：</translation>
    </message>
</context>
<context>
    <name>EmergencyAccessBanner</name>
    <message>
        <source>(%1 consults)</source>
        <translation>（%1 个会诊）</translation>
    </message>
    <message>
        <source>Emergency access</source>
        <translation>紧急访问</translation>
    </message>
    <message>
        <source>Emergency access active until %1 — reviewed afterwards</source>
        <translation>紧急访问有效至 %1 — 事后将被审核</translation>
    </message>
</context>
<context>
    <name>FilterForm</name>
    <message>
        <source>&amp;Action</source>
        <translation>操作(&amp;A)</translation>
    </message>
    <message>
        <source>&amp;Device</source>
        <translation>设备(&amp;D)</translation>
    </message>
    <message>
        <source>&amp;Outcome</source>
        <translation>结果(&amp;O)</translation>
    </message>
    <message>
        <source>&amp;Search</source>
        <translation>搜索(&amp;S)</translation>
    </message>
    <message>
        <source>&amp;Time</source>
        <translation>时间(&amp;T)</translation>
    </message>
    <message>
        <source>&amp;User</source>
        <translation>用户(&amp;U)</translation>
    </message>
    <message>
        <source>An action, or a prefix ending in * (client.file.*)</source>
        <translation>一个操作，或以 * 结尾的前缀（client.file.*）</translation>
    </message>
    <message>
        <source>Clear</source>
        <translation>清除</translation>
    </message>
    <message>
        <source>Consult / &amp;patient</source>
        <translation>会诊 / 患者(&amp;P)</translation>
    </message>
    <message>
        <source>Only entries from the first time (inclusive) to the second (exclusive)</source>
        <translation>仅限从第一个时间（含）到第二个时间（不含）的记录</translation>
    </message>
    <message>
        <source>any</source>
        <translation>任意</translation>
    </message>
    <message>
        <source>consult id</source>
        <translation>会诊 ID</translation>
    </message>
    <message>
        <source>device id</source>
        <translation>设备 ID</translation>
    </message>
    <message>
        <source>only</source>
        <translation>仅限</translation>
    </message>
    <message>
        <source>user name</source>
        <translation>用户名</translation>
    </message>
</context>
<context>
    <name>SharePreview</name>
    <message>
        <source>Sharing — hidden areas are black</source>
        <translation>正在共享 — 隐藏的区域显示为黑色</translation>
    </message>
    <message>
        <source>Paused — the session is locked; others see a black screen</source>
        <translation>已暂停 — 会话已锁定；其他人看到的是黑屏</translation>
    </message>
    <message>
        <source>Others see a black screen</source>
        <translation>其他人看到的是黑屏</translation>
    </message>
    <message>
        <source>Others see a black screen: hidden areas could not be measured</source>
        <translation>其他人看到的是黑屏：无法确定需要隐藏的区域</translation>
    </message>
    <message>
        <source>Others see a black screen: the window is not being captured</source>
        <translation>其他人看到的是黑屏：窗口未被采集</translation>
    </message>
    <message>
        <source>Others see a black screen: text scanning is not running</source>
        <translation>其他人看到的是黑屏：文字扫描未在运行</translation>
    </message>
    <message>
        <source>Others see a black screen: redaction failed</source>
        <translation>其他人看到的是黑屏：遮盖处理失败</translation>
    </message>
    <message>
        <source>Clear regions</source>
        <translation>清除区域</translation>
    </message>
    <message>
        <source>Drag on the picture to hide an area; right-click an area to show it again.</source>
        <translation>在画面上拖动可隐藏一个区域；右键单击该区域可重新显示。</translation>
    </message>
    <message>
        <source>Areas you hid: %1</source>
        <translation>您隐藏的区域：%1</translation>
    </message>
</context>
<context>
    <name>CallView</name>
    <message>
        <source>You are no longer a member of this consult, so the call ended.</source>
        <translation>您已不再是此会诊的成员，因此通话已结束。</translation>
    </message>
    <message>
        <source>A participant's device is no longer trusted; it was removed from the call.</source>
        <translation>一位参与者的设备已不再受信任，已被移出通话。</translation>
    </message>
    <message>
        <source>A participant is no longer a member of this consult; they were removed from the call.</source>
        <translation>一位参与者已不再是此会诊的成员，已被移出通话。</translation>
    </message>
    <message>
        <source>The host left. You host this call now: you admit who joins.</source>
        <translation>主持人已离开。现在由您主持此通话：由您准许谁加入。</translation>
    </message>
    <message>
        <source>The speaker could not be opened.</source>
        <translation>无法打开扬声器。</translation>
    </message>
    <message>
        <source>Test sound</source>
        <translation>测试声音</translation>
    </message>
    <message>
        <source>Sound on</source>
        <translation>打开声音</translation>
    </message>
    <message>
        <source>Sound off</source>
        <translation>关闭声音</translation>
    </message>
    <message>
        <source>Playing a test sound…</source>
        <translation>正在播放测试声音…</translation>
    </message>
    <message>
        <source>No speaker found</source>
        <translation>未找到扬声器</translation>
    </message>
    <message>
        <source>Test tone</source>
        <translation>测试音</translation>
    </message>
    <message>
        <source>Test pattern</source>
        <translation>测试图案</translation>
    </message>
    <message>
        <source>Camera %1</source>
        <translation>摄像头 %1</translation>
    </message>
    <message>
        <source>Test again</source>
        <translation>重新测试</translation>
    </message>
    <message>
        <source>Network: testing…</source>
        <translation>网络：正在测试…</translation>
    </message>
    <message>
        <source>Network: good · %1</source>
        <translation>网络：良好 · %1</translation>
    </message>
    <message>
        <source>Network: direct only — the hospital's TURN relay cannot be reached, so calls work only between devices that can reach each other directly.</source>
        <translation>网络：仅直连 — 无法连接到医院的 TURN 中继，只有能够彼此直接连通的设备之间才能通话。</translation>
    </message>
    <message>
        <source>Network: blocked — the server cannot be reached.</source>
        <translation>网络：受阻 — 无法连接到服务器。</translation>
    </message>
    <message>
        <source>Network: blocked — calls must go through the hospital's TURN relay, and it cannot be reached.</source>
        <translation>网络：受阻 — 通话必须经医院的 TURN 中继，但无法连接到该中继。</translation>
    </message>
    <message>
        <source>Network: TURN only — media goes through the hospital's relay · %1</source>
        <translation>网络：仅 TURN — 媒体经医院的中继传输 · %1</translation>
    </message>
    <message>
        <source>Expect a choppy picture and sound.</source>
        <translation>画面和声音可能会卡顿。</translation>
    </message>
    <message>
        <source>%1 ms round trip to the relay · %2% lost</source>
        <translation>到中继的往返时间 %1 毫秒 · 丢包 %2%</translation>
    </message>
    <message>
        <source>You were let in.</source>
        <translation>您已被允许加入。</translation>
    </message>
    <message>
        <source>You stopped waiting.</source>
        <translation>您已停止等待。</translation>
    </message>
    <message>
        <source>Waiting room (%1)</source>
        <translation>等候室（%1）</translation>
    </message>
    <message>
        <source>Waiting for %1 to let you in…</source>
        <translation>正在等待 %1 允许您加入…</translation>
    </message>
    <message>
        <source>This call has ended.</source>
        <translation>此通话已结束。</translation>
    </message>
    <message>
        <source>Stop waiting</source>
        <translation>停止等待</translation>
    </message>
    <message>
        <source>Joining failed. Try again.</source>
        <translation>加入失败，请重试。</translation>
    </message>
    <message>
        <source>Join video consult in progress</source>
        <translation>加入正在进行的视频会诊</translation>
    </message>
    <message>
        <source>Invite…</source>
        <translation>邀请…</translation>
    </message>
    <message>
        <source>Everyone in this consult is in the call</source>
        <translation>此会诊的所有成员都已在通话中</translation>
    </message>
    <message>
        <source>Deny</source>
        <translation>拒绝</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>Admit</source>
        <translation>允许加入</translation>
    </message>
    <message>
        <source>%1 was invited. Admit them when they are waiting.</source>
        <translation>已邀请 %1。对方进入等候室后请允许其加入。</translation>
    </message>
    <message>
        <source>%1 is waiting to join</source>
        <translation>%1 正在等待加入</translation>
    </message>
    <message>
        <source>%1 invites you to join a video consult in progress. You will wait until they let you in.</source>
        <translation>%1 邀请您加入正在进行的视频会诊。在对方允许您进入之前，您需要等待。</translation>
    </message>
    <message>
        <source>%1 did not let you into this call.</source>
        <translation>%1 未允许您加入此通话。</translation>
    </message>
    <message>
        <source>%1 asks to record this video consult. Recording starts only if everyone in the call agrees, and everyone sees when it runs. The recording is encrypted and kept on %1&apos;s device; your agreement is signed by this device and stored with it.</source>
        <translation>%1 请求录制此视频会诊。只有通话中的每个人都同意后才会开始录制，录制进行时所有人都能看到提示。录制内容经过加密，保存在 %1 的设备上；您的同意由本设备签名并与录制内容一起保存。</translation>
    </message>
    <message>
        <source>Asking everyone for consent to record…</source>
        <translation>正在征求所有人对录制的同意…</translation>
    </message>
    <message>
        <source>Don&apos;t record</source>
        <translation>不要录制</translation>
    </message>
    <message>
        <source>I agree</source>
        <translation>我同意</translation>
    </message>
    <message>
        <source>Not recorded: not everyone agreed</source>
        <translation>未录制：并非所有人都同意</translation>
    </message>
    <message>
        <source>Record</source>
        <translation>录制</translation>
    </message>
    <message>
        <source>Recording consent</source>
        <translation>录制同意</translation>
    </message>
    <message>
        <source>Recording stopped</source>
        <translation>录制已停止</translation>
    </message>
    <message>
        <source>Stop recording</source>
        <translation>停止录制</translation>
    </message>
    <message>
        <source>● Recording — everyone in the call agreed</source>
        <translation>● 正在录制 — 通话中的所有人均已同意</translation>
    </message>
    <message>
        <source>%1 is calling you to a video consult.</source>
        <translation>%1 正在邀请您参加视频会诊。</translation>
    </message>
    <message>
        <source>Accept</source>
        <translation>接听</translation>
    </message>
    <message>
        <source>Calls are end-to-end encrypted and go direct where the network allows, else through the hospital&apos;s TURN relay.</source>
        <translation>通话采用端到端加密；网络允许时直接连接，否则经由医院的 TURN 中继。</translation>
    </message>
    <message>
        <source>Camera</source>
        <translation>摄像头</translation>
    </message>
    <message>
        <source>Camera off</source>
        <translation>关闭摄像头</translation>
    </message>
    <message>
        <source>Camera on</source>
        <translation>摄像头已开</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Connecting…</source>
        <translation>正在连接…</translation>
    </message>
    <message>
        <source>Connection lost — reconnecting…</source>
        <translation>连接中断 — 正在重新连接…</translation>
    </message>
    <message>
        <source>Decline</source>
        <translation>拒绝</translation>
    </message>
    <message>
        <source>Direct</source>
        <translation>直接连接</translation>
    </message>
    <message>
        <source>Each participant&apos;s verification code is under their picture: compare it aloud.</source>
        <translation>每位参与者的验证码显示在其画面下方：请口头核对。</translation>
    </message>
    <message>
        <source>End-to-end encrypted · unverified device</source>
        <translation>端到端加密 · 未验证的设备</translation>
    </message>
    <message>
        <source>End-to-end encrypted · verified device</source>
        <translation>端到端加密 · 已验证的设备</translation>
    </message>
    <message>
        <source>Fair connection</source>
        <translation>连接一般</translation>
    </message>
    <message>
        <source>Good connection</source>
        <translation>连接良好</translation>
    </message>
    <message>
        <source>Incoming video consult</source>
        <translation>视频会诊来电</translation>
    </message>
    <message>
        <source>Join</source>
        <translation>加入</translation>
    </message>
    <message>
        <source>Join muted</source>
        <translation>加入时静音</translation>
    </message>
    <message>
        <source>Join this consult before starting a video consult.</source>
        <translation>请先加入此会诊，再发起视频会诊。</translation>
    </message>
    <message>
        <source>Join video consult</source>
        <translation>加入视频会诊</translation>
    </message>
    <message>
        <source>Join with camera off</source>
        <translation>加入时关闭摄像头</translation>
    </message>
    <message>
        <source>Leave</source>
        <translation>离开</translation>
    </message>
    <message>
        <source>Left the call</source>
        <translation>已离开通话</translation>
    </message>
    <message>
        <source>Microphone</source>
        <translation>麦克风</translation>
    </message>
    <message>
        <source>Microphone on</source>
        <translation>麦克风已开</translation>
    </message>
    <message>
        <source>Mute</source>
        <translation>静音</translation>
    </message>
    <message>
        <source>Muted</source>
        <translation>已静音</translation>
    </message>
    <message>
        <source>Poor connection</source>
        <translation>连接较差</translation>
    </message>
    <message>
        <source>Refused: this device&apos;s identity could not be confirmed. No media was exchanged.</source>
        <translation>已拒绝：无法确认此设备的身份。未交换任何音视频数据。</translation>
    </message>
    <message>
        <source>Route not known yet</source>
        <translation>连接路径尚未确定</translation>
    </message>
    <message>
        <source>Share screen</source>
        <translation>共享屏幕</translation>
    </message>
    <message>
        <source>Sharing your screen</source>
        <translation>正在共享您的屏幕</translation>
    </message>
    <message>
        <source>Speaker</source>
        <translation>扬声器</translation>
    </message>
    <message>
        <source>Start video consult</source>
        <translation>发起视频会诊</translation>
    </message>
    <message>
        <source>Stop sharing</source>
        <translation>停止共享</translation>
    </message>
    <message>
        <source>System default</source>
        <translation>系统默认</translation>
    </message>
    <message>
        <source>Test pattern (no camera capture on this machine)</source>
        <translation>测试图案（本机无摄像头采集）</translation>
    </message>
    <message>
        <source>Test tone (no microphone capture on this machine)</source>
        <translation>测试音（本机无麦克风采集）</translation>
    </message>
    <message>
        <source>Through the TURN relay</source>
        <translation>经由 TURN 中继</translation>
    </message>
    <message>
        <source>Unmute</source>
        <translation>取消静音</translation>
    </message>
    <message>
        <source>Verification code %1 — read it aloud; the others must see the same.</source>
        <translation>验证码 %1 — 请读出；其他人看到的必须相同。</translation>
    </message>
    <message>
        <source>Verification code: %1</source>
        <translation>验证码：%1</translation>
    </message>
    <message>
        <source>Video consult</source>
        <translation>视频会诊</translation>
    </message>
    <message>
        <source>Video consult · %1 participants</source>
        <translation>视频会诊 · %1 位参与者</translation>
    </message>
    <message>
        <source>Video consult: %1</source>
        <translation>视频会诊：%1</translation>
    </message>
    <message>
        <source>You</source>
        <translation>您</translation>
    </message>
</context>
<context>
    <name>DevicesPanel</name>
    <message>
        <source>wipe ordered</source>
        <translation>已下达擦除指令</translation>
    </message>
    <message>
        <source>never</source>
        <translation>从未</translation>
    </message>
    <message>
        <source>log-out ordered</source>
        <translation>已下达注销指令</translation>
    </message>
    <message>
        <source>Workstation</source>
        <translation>工作站</translation>
    </message>
    <message>
        <source>Wiped</source>
        <translation>已擦除</translation>
    </message>
    <message>
        <source>Wipe ordered for %2 (%1): it runs when the device is online.</source>
        <translation>已向 %2（%1）下达擦除指令：设备联网时执行。</translation>
    </message>
    <message>
        <source>Wipe %2 (%1)? Its keys and everything it holds are destroyed as soon as it is online. This cannot be undone.</source>
        <translation>擦除 %2（%1）？设备一联网，其密钥和所有数据即被销毁。此操作无法撤销。</translation>
    </message>
    <message>
        <source>Waiting for approval</source>
        <translation>等待批准</translation>
    </message>
    <message>
        <source>User</source>
        <translation>用户</translation>
    </message>
    <message>
        <source>State</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Select a device.</source>
        <translation>请选择一台设备。</translation>
    </message>
    <message>
        <source>Revoked</source>
        <translation>已吊销</translation>
    </message>
    <message>
        <source>Revoke %2 (%1)? It can no longer sign in and deletes its data the next time it reaches the server.</source>
        <translation>吊销 %2（%1）？该设备将无法登录，并在下次连接服务器时删除其数据。</translation>
    </message>
    <message>
        <source>Refresh</source>
        <translation>刷新</translation>
    </message>
    <message>
        <source>Only devices waiting for approval</source>
        <translation>仅显示等待批准的设备</translation>
    </message>
    <message>
        <source>Log-out ordered for %2 (%1).</source>
        <translation>已向 %2（%1）下达注销指令。</translation>
    </message>
    <message>
        <source>Last seen</source>
        <translation>最后在线</translation>
    </message>
    <message>
        <source>Key fingerprint</source>
        <translation>密钥指纹</translation>
    </message>
    <message>
        <source>End %1's session on %2? They can sign in again.</source>
        <translation>结束 %1 在 %2 上的会话？之后仍可重新登录。</translation>
    </message>
    <message>
        <source>Device ID</source>
        <translation>设备 ID</translation>
    </message>
    <message>
        <source>Confirm</source>
        <translation>确认</translation>
    </message>
    <message>
        <source>Active</source>
        <translation>使用中</translation>
    </message>
    <message>
        <source>&amp;Wipe…</source>
        <translation>擦除(&amp;W)…</translation>
    </message>
    <message>
        <source>&amp;Revoke</source>
        <translation>吊销(&amp;R)</translation>
    </message>
    <message>
        <source>&amp;Log out</source>
        <translation>注销(&amp;L)</translation>
    </message>
    <message>
        <source>&amp;Approve</source>
        <translation>批准(&amp;A)</translation>
    </message>
    <message>
        <source>%2 (%1) is revoked.</source>
        <translation>%2（%1）已吊销。</translation>
    </message>
    <message>
        <source>%1's %2 is approved: they can sign in now.</source>
        <translation>%1 的 %2 已批准：现在可以登录。</translation>
    </message>
    <message>
        <source>%1 · %2
Key fingerprint: %3</source>
        <translation>%1 · %2
密钥指纹：%3</translation>
    </message>
    <message>
        <source> (this workstation)</source>
        <translation>（本工作站）</translation>
    </message>
</context>
<context>
    <name>UpdateBanner</name>
    <message>
        <source>SafeConsult %1 is downloaded and its signature verified, ready for IT to install. You can keep working.</source>
        <translation>SafeConsult %1 已下载并通过签名验证，等待 IT 安装。您可以继续工作。</translation>
    </message>
    <message>
        <source>SafeConsult %1 is available. IT installs it on this shared workstation.</source>
        <translation>SafeConsult %1 已发布。IT 将在这台共享工作站上安装。</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>An update offered by the server did not pass its security checks and was not installed. SafeConsult keeps working. Please tell IT (the details are in the audit log).</source>
        <translation>服务器提供的一个更新未通过安全检查，未予安装。SafeConsult 可继续正常使用。请告知 IT（详情见审计日志）。</translation>
    </message>
</context>
<context>
    <name>CoviewBinding</name>
    <message>
        <source>Following %1</source>
        <translation>正在跟随 %1</translation>
    </message>
    <message>
        <source>Presenting · %1 following</source>
        <translation>正在演示 · %1 人跟随</translation>
    </message>
    <message>
        <source>Waiting for a presenter…</source>
        <translation>等待演示者…</translation>
    </message>
</context>
<context>
    <name>SharedStudiesPanel</name>
    <message>
        <source>View together</source>
        <translation>一起查看</translation>
    </message>
    <message>
        <source>Open</source>
        <translation>打开</translation>
    </message>
    <message>
        <source>%1 · %2 image(s) · from %3</source>
        <translation>%1 · %2 幅图像 · 来自 %3</translation>
    </message>
    <message>
        <source>Shared studies</source>
        <translation>共享的检查</translation>
    </message>
    <message>
        <source>Studies shared in your consult rooms</source>
        <translation>在您的会诊室中共享的检查</translation>
    </message>
    <message>
        <source>Study</source>
        <translation>检查</translation>
    </message>
    <message>
        <source>de-identified</source>
        <translation>已去标识</translation>
    </message>
</context>
<context>
    <name>ViewerConsultMixin</name>
    <message>
        <source>This study is not de-identified, and this room is not linked to its patient. A de-identified copy is shared unless you confirm that the identified study may go to this room.</source>
        <translation>该检查未去标识化，且此会诊室未关联到该患者。除非您确认可以将含身份信息的检查发送到此会诊室，否则将共享去标识化副本。</translation>
    </message>
    <message>
        <source>Only a verified study can be shared on. Verify the sender's device first.</source>
        <translation>只有已验证的检查才能转发共享。请先验证发送者的设备。</translation>
    </message>
    <message>
        <source>A de-identified copy of this study will be shared into the room, signed by this device and recorded in the audit trail.</source>
        <translation>将把该检查的去标识化副本共享到会诊室，由本设备签名并记录在审计日志中。</translation>
    </message>
    <message>
        <source>A de-identified copy of the study was shared in the room.</source>
        <translation>已将该检查的去标识化副本共享到会诊室。</translation>
    </message>
    <message>
        <source>Consult room:</source>
        <translation>会诊室：</translation>
    </message>
    <message>
        <source>Downloading %v / %m</source>
        <translation>正在下载 %v / %m</translation>
    </message>
    <message>
        <source>Follow the presenter</source>
        <translation>跟随演示者</translation>
    </message>
    <message>
        <source>Join a consult room first.</source>
        <translation>请先加入一个会诊室。</translation>
    </message>
    <message>
        <source>Only studies opened from files can be shared.</source>
        <translation>只能共享从文件打开的检查。</translation>
    </message>
    <message>
        <source>Present to the room</source>
        <translation>向会诊室演示</translation>
    </message>
    <message>
        <source>Share de-identified copy</source>
        <translation>共享去标识副本</translation>
    </message>
    <message>
        <source>Share identified (recorded in the audit trail)</source>
        <translation>共享含身份信息的检查（记入审计日志）</translation>
    </message>
    <message>
        <source>Share to consult</source>
        <translation>共享到会诊</translation>
    </message>
    <message>
        <source>Share to consult…</source>
        <translation>共享到会诊…</translation>
    </message>
    <message>
        <source>Sharing %v / %m</source>
        <translation>正在共享 %v / %m</translation>
    </message>
    <message>
        <source>Stop viewing together</source>
        <translation>停止共同查看</translation>
    </message>
    <message>
        <source>The study was shared in the room.</source>
        <translation>检查已在会诊室中共享。</translation>
    </message>
    <message>
        <source>This study is not de-identified. Rooms are not linked to a patient, so a de-identified copy is shared unless you confirm that the identified study may go to this room.</source>
        <translation>此检查尚未去标识。会诊室未与患者关联，因此将共享去标识副本，除非您确认含身份信息的检查可以发送到此会诊室。</translation>
    </message>
    <message>
        <source>View together</source>
        <translation>共同查看</translation>
    </message>
</context>
<context>
    <name>DisappearBox</name>
    <message>
        <source>After %1 s</source>
        <translation>%1 秒后</translation>
    </message>
    <message>
        <source>Disappear after 1 day</source>
        <translation>1 天后消失</translation>
    </message>
    <message>
        <source>Disappear after 1 hour</source>
        <translation>1 小时后消失</translation>
    </message>
    <message>
        <source>Disappear after 7 days</source>
        <translation>7 天后消失</translation>
    </message>
    <message>
        <source>Messages of this conversation are removed from every member&apos;s device this long after sending</source>
        <translation>此对话的消息在发送后经过这段时间，将从每位成员的设备上删除</translation>
    </message>
    <message>
        <source>Messages stay</source>
        <translation>消息保留</translation>
    </message>
</context>
<context>
    <name>PresenceBox</name>
    <message>
        <source>Available</source>
        <translation>在线</translation>
    </message>
    <message>
        <source>Do not disturb</source>
        <translation>免打扰</translation>
    </message>
    <message>
        <source>Do not disturb (only urgent messages)</source>
        <translation>免打扰（仅紧急消息）</translation>
    </message>
    <message>
        <source>Your status</source>
        <translation>您的状态</translation>
    </message>
</context>
<context>
    <name>UrgentBanner</name>
    <message>
        <source>%1 (and %2 more)</source>
        <translation>%1（另有 %2 条）</translation>
    </message>
    <message>
        <source>Acknowledge</source>
        <translation>确认收到</translation>
    </message>
    <message>
        <source>Open</source>
        <translation>打开</translation>
    </message>
    <message>
        <source>Urgent from %1: %2</source>
        <translation>来自 %1 的紧急消息：%2</translation>
    </message>
</context>
<context>
    <name>RecordingPlayer</name>
    <message>
        <source>Play</source>
        <translation>播放</translation>
    </message>
    <message>
        <source>Pause</source>
        <translation>暂停</translation>
    </message>
    <message>
        <source>Played from memory; nothing is written to disk.</source>
        <translation>在内存中播放，不写入磁盘。</translation>
    </message>
    <message>
        <source>This participant&apos;s part of the recording cannot be played: it is damaged or incomplete.</source>
        <translation>无法播放此参与者的录制部分：文件已损坏或不完整。</translation>
    </message>
    <message>
        <source>The picture cannot be played on from here: this part of the recording is damaged or incomplete.</source>
        <translation>画面无法从此处继续播放：这部分录制已损坏或不完整。</translation>
    </message>
    <message>
        <source>The sound cannot be played on from here: this part of the recording is damaged or incomplete. The picture plays without it.</source>
        <translation>声音无法从此处继续播放：这部分录制已损坏或不完整。画面将无声继续播放。</translation>
    </message>
    <message>
        <source>%1 / %2</source>
        <translation>%1 / %2</translation>
    </message>
    <message>
        <source>Open recording</source>
        <translation>打开录制</translation>
    </message>
    <message>
        <source>Recordings of this consult</source>
        <translation>本次会诊的录制</translation>
    </message>
    <message>
        <source>Recording by %1 · %2</source>
        <translation>%1 的录制 · %2</translation>
    </message>
    <message>
        <source>Downloading and verifying…</source>
        <translation>正在下载并验证…</translation>
    </message>
    <message>
        <source>Verified: every participant&apos;s signed consent is inside.</source>
        <translation>已验证：包含每位参与者签名的同意。</translation>
    </message>
    <message>
        <source>Recordings</source>
        <translation>录制</translation>
    </message>
</context>
<context>
    <name>Transfers</name>
    <message>
        <source>Waiting to resume…</source>
        <translation>等待继续…</translation>
    </message>
    <message>
        <source>Dismiss</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>%1 s</source>
        <translation>%1 秒</translation>
    </message>
    <message>
        <source>%1 min %2 s</source>
        <translation>%1 分 %2 秒</translation>
    </message>
    <message>
        <source>%1 h %2 min</source>
        <translation>%1 小时 %2 分</translation>
    </message>
    <message>
        <source>under 1 s</source>
        <translation>不到 1 秒</translation>
    </message>
    <message>
        <source>Encrypting… %1 of %2</source>
        <translation>正在加密… %1 / %2</translation>
    </message>
    <message>
        <source>Verifying the file…</source>
        <translation>正在验证文件…</translation>
    </message>
    <message>
        <source>Paused: resumes when the connection is back</source>
        <translation>已暂停：连接恢复后继续</translation>
    </message>
    <message>
        <source>Done</source>
        <translation>完成</translation>
    </message>
    <message>
        <source>Cancelled</source>
        <translation>已取消</translation>
    </message>
    <message>
        <source>Failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <source>%1 of %2</source>
        <translation>%1 / %2</translation>
    </message>
    <message>
        <source>%1/s</source>
        <translation>%1/秒</translation>
    </message>
    <message>
        <source>%1 left</source>
        <translation>剩余 %1</translation>
    </message>
    <message>
        <source>Starting…</source>
        <translation>正在开始…</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Verified: signed by the sender&apos;s device, intact.</source>
        <translation>已验证：由发送者的设备签名，文件完整。</translation>
    </message>
    <message>
        <source>Download</source>
        <translation>下载</translation>
    </message>
    <message>
        <source>Open</source>
        <translation>打开</translation>
    </message>
    <message>
        <source>Save as…</source>
        <translation>另存为…</translation>
    </message>
    <message>
        <source>Attached file</source>
        <translation>附件</translation>
    </message>
    <message>
        <source>This type of file cannot be shown here. Use Save as… to open it with another program.</source>
        <translation>此类文件无法在此显示。请使用“另存为…”后用其他程序打开。</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
</context>
<context>
    <name>NoticeBanner</name>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
</context>
<context>
    <name>PolicyNotice</name>
    <message>
        <source>This computer's machine policy was refused, so SafeConsult runs on its safe defaults: %1 Please tell IT.</source>
        <translation>本机的机器策略被拒绝，SafeConsult 正以安全默认设置运行：%1 请告知 IT。</translation>
    </message>
</context>
<context>
    <name>PatientLinkBar</name>
    <message>
        <source>Unlink</source>
        <translation>取消关联</translation>
    </message>
    <message>
        <source>Patient:</source>
        <translation>患者：</translation>
    </message>
    <message>
        <source>Link to patient...</source>
        <translation>关联患者...</translation>
    </message>
    <message>
        <source>Change...</source>
        <translation>更改...</translation>
    </message>
    <message>
        <source>%1 · MRN %2</source>
        <translation>%1 · 病历号 %2</translation>
    </message>
</context>
<context>
    <name>PatientLinkDialog</name>
    <message>
        <source>Patient name</source>
        <translation>患者姓名</translation>
    </message>
    <message>
        <source>Only the members of this room will see the patient. It is sent end-to-end encrypted; the server never sees it.</source>
        <translation>只有此会诊室的成员能看到该患者。信息经端到端加密发送，服务器无法看到。</translation>
    </message>
    <message>
        <source>MRN</source>
        <translation>病历号</translation>
    </message>
    <message>
        <source>Link this room to a patient</source>
        <translation>将此会诊室关联到患者</translation>
    </message>
    <message>
        <source>Enter the patient's name and an MRN of letters, digits, spaces or . / _ -</source>
        <translation>请输入患者姓名，以及由字母、数字、空格或 . / _ - 组成的病历号</translation>
    </message>
</context>
<context>
    <name>ViewerSnapshotMixin</name>
    <message>
        <source>The snapshot shows the patient ID in its watermark, and this room is not linked to this patient. Send it to this room? It is recorded in the audit trail.</source>
        <translation>快照的水印中显示患者 ID，而此会诊室未关联到该患者。仍要发送到此会诊室吗？此操作将记录在审计日志中。</translation>
    </message>
    <message>
        <source>Snapshot with watermark sent to the consult room.</source>
        <translation>带水印的快照已发送到会诊室。</translation>
    </message>
    <message>
        <source>Snapshot with watermark copied to the clipboard.</source>
        <translation>带水印的快照已复制到剪贴板。</translation>
    </message>
    <message>
        <source>Snapshot</source>
        <translation>快照</translation>
    </message>
    <message>
        <source>Send snapshot to consult room…</source>
        <translation>发送快照到会诊室…</translation>
    </message>
    <message>
        <source>Send snapshot</source>
        <translation>发送快照</translation>
    </message>
    <message>
        <source>Copy what this pane shows, with the watermark, to the clipboard (S)</source>
        <translation>将此窗格显示的内容（带水印）复制到剪贴板 (S)</translation>
    </message>
</context>
</TS>