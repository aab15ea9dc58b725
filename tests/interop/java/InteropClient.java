// Java as an interop client for camera-web's tests/interop.rs: the JDK's default TrustManager
// (PKIX) over a KeyStore that holds only the given CA certificate, and HTTPS endpoint
// identification (what HttpsURLConnection and most Java HTTP clients do).
//
//   java -Djdk.net.hosts.file=HOSTS InteropClient ID ADDRESS PORT NAME CAFILE [ID ADDRESS PORT NAME CAFILE ...]
//
// For each case: when NAME is a DNS name, the TCP connection goes to NAME as resolved by Java
// (the test maps names to its private address with jdk.net.hosts.file, and checks it resolved to
// ADDRESS); when NAME is an IP address, to ADDRESS (never to NAME). Then a TLS handshake layered
// on that socket for host NAME. Prints one line per case: "ID OK" or "ID FAIL <error>".
import java.io.FileInputStream;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class InteropClient {
    static boolean isIpLiteral(String name) {
        return name.matches("[0-9.]+") || name.contains(":");
    }

    static void check(String address, int port, String name, String caFile) throws Exception {
        KeyStore anchors = KeyStore.getInstance(KeyStore.getDefaultType());
        anchors.load(null, null);
        try (InputStream in = new FileInputStream(caFile)) {
            X509Certificate ca = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
            anchors.setCertificateEntry("ca", ca);
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(anchors);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, tmf.getTrustManagers(), null);

        InetAddress target = isIpLiteral(name) ? InetAddress.getByName(address) : InetAddress.getByName(name);
        if (!target.equals(InetAddress.getByName(address))) {
            throw new IllegalStateException(name + " resolved to " + target + ", not to the test address " + address);
        }
        try (Socket plain = new Socket()) {
            plain.connect(new InetSocketAddress(target, port), 10000);
            plain.setSoTimeout(20000);
            try (SSLSocket tls = (SSLSocket) context.getSocketFactory().createSocket(plain, name, port, true)) {
                SSLParameters params = tls.getSSLParameters();
                params.setEndpointIdentificationAlgorithm("HTTPS");
                tls.setSSLParameters(params);
                tls.startHandshake();
            }
        }
    }

    public static void main(String[] args) {
        if (args.length == 0 || args.length % 5 != 0) {
            System.err.println("usage: InteropClient ID ADDRESS PORT NAME CAFILE [...]");
            System.exit(2);
        }
        for (int i = 0; i < args.length; i += 5) {
            String id = args[i];
            try {
                check(args[i + 1], Integer.parseInt(args[i + 2]), args[i + 3], args[i + 4]);
                System.out.println(id + " OK");
            } catch (Exception e) {
                Throwable root = e;
                while (root.getCause() != null) root = root.getCause();
                String why = e.getClass().getSimpleName() + ": " + e.getMessage();
                if (root != e) why += " (root cause " + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
                System.out.println(id + " FAIL " + why.replace('\n', ' '));
            }
            System.out.flush();
        }
    }
}
