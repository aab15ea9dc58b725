/* mbedTLS 2.28 (Debian's libmbedtls-dev) as an interop client for camera-web's tests/interop.rs.
 *
 *   client ID ADDRESS PORT NAME CAFILE [ID ADDRESS PORT NAME CAFILE ...]
 *
 * For each case: the CA file is parsed as the only trust anchor, a TCP connection goes to
 * ADDRESS:PORT (never to NAME), and a TLS handshake with verification required checks the chain
 * and the certificate against NAME (mbedtls_ssl_set_hostname). Prints one line per case:
 * "ID OK" or "ID FAIL <step>: <mbedTLS error> [<verification flags>]". Exits 0 when every case ran. */
#include <stdio.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;

static void fail(const char *id, const char *step, int ret, uint32_t flags) {
    char err[256], info[512] = "";
    mbedtls_strerror(ret, err, sizeof err);
    if (flags != 0) {
        mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
        for (char *p = info; *p; p++)
            if (*p == '\n') *p = ' ';
    }
    printf("%s FAIL %s: -0x%04x %s%s%s%s\n", id, step, (unsigned)-ret, err, flags ? " [" : "", info,
           flags ? "]" : "");
}

static void check(const char *id, const char *address, const char *port, const char *name, const char *ca_file) {
    mbedtls_x509_crt ca;
    mbedtls_net_context net;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    int ret;
    mbedtls_x509_crt_init(&ca);
    mbedtls_net_init(&net);
    mbedtls_ssl_init(&ssl);
    mbedtls_ssl_config_init(&conf);

    /* A positive result counts certificates that did not parse: the anchor is refused too. */
    ret = mbedtls_x509_crt_parse_file(&ca, ca_file);
    if (ret != 0) {
        fail(id, "parsing the CA file", ret < 0 ? ret : MBEDTLS_ERR_X509_CERT_UNKNOWN_FORMAT, 0);
        if (ret > 0) printf("#   (%d certificate(s) in the CA file did not parse)\n", ret);
        goto out;
    }
    if ((ret = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                           MBEDTLS_SSL_PRESET_DEFAULT)) != 0) {
        fail(id, "config", ret, 0);
        goto out;
    }
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
    mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ssl_conf_read_timeout(&conf, 20000);
    if ((ret = mbedtls_ssl_setup(&ssl, &conf)) != 0 || (ret = mbedtls_ssl_set_hostname(&ssl, name)) != 0) {
        fail(id, "setup", ret, 0);
        goto out;
    }
    if ((ret = mbedtls_net_connect(&net, address, port, MBEDTLS_NET_PROTO_TCP)) != 0) {
        fail(id, "connecting", ret, 0);
        goto out;
    }
    mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
    while ((ret = mbedtls_ssl_handshake(&ssl)) != 0) {
        if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE) {
            fail(id, "handshake", ret, mbedtls_ssl_get_verify_result(&ssl));
            goto out;
        }
    }
    printf("%s OK\n", id);
    mbedtls_ssl_close_notify(&ssl);
out:
    fflush(stdout);
    mbedtls_net_free(&net);
    mbedtls_ssl_free(&ssl);
    mbedtls_ssl_config_free(&conf);
    mbedtls_x509_crt_free(&ca);
}

int main(int argc, char **argv) {
    if (argc < 6 || (argc - 1) % 5 != 0) {
        fprintf(stderr, "usage: client ID ADDRESS PORT NAME CAFILE [...]\n");
        return 2;
    }
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0) != 0) {
        fprintf(stderr, "cannot seed the random generator\n");
        return 1;
    }
    for (int i = 1; i < argc; i += 5) check(argv[i], argv[i + 1], argv[i + 2], argv[i + 3], argv[i + 4]);
    return 0;
}
