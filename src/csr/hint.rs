//! What to tell about the kind of cluster at hand, from what the client sees of it. Managed
//! clusters differ in how (and whether) they issue kubernetes.io/kube-apiserver-client
//! certificates; a request that was approved and never issued is explained for the one at hand.

/// Why an approved request gets no certificate, for the cluster at `server`.
pub fn no_signer(server: &str) -> String {
    if is_eks(server) {
        return "EKS does not issue kubernetes.io/kube-apiserver-client certificates (it approves them, but its signer does not sign them); give people access with EKS access entries (aws eks create-access-entry) instead".to_string();
    }
    "no signer for kubernetes.io/kube-apiserver-client seems to run: kube-controller-manager signs these only with --cluster-signing-cert-file and --cluster-signing-key-file (or --cluster-signing-kube-apiserver-client-cert-file and -key-file), and some managed clusters do not sign them at all; ask your cluster administrator".to_string()
}

/// An Amazon EKS endpoint: `https://<id>.<zone>.<region>.eks.amazonaws.com` (`.com.cn` in China).
fn is_eks(server: &str) -> bool {
    let host = server
        .split_once("://")
        .map_or(server, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    host.ends_with(".eks.amazonaws.com") || host.ends_with(".eks.amazonaws.com.cn")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eks_endpoint_is_told_to_use_access_entries() {
        for server in [
            "https://0123456789ABCDEF0123456789ABCDEF.gr7.us-west-2.eks.amazonaws.com",
            "https://abc.yl4.cn-north-1.eks.amazonaws.com.cn:443/",
        ] {
            assert!(
                no_signer(server).starts_with("EKS does not issue"),
                "{server}"
            );
        }
        for server in [
            "https://10.0.0.1:6443",
            "https://eks.amazonaws.com.example.org",
            "https://api.example.com/eks.amazonaws.com",
        ] {
            let said = no_signer(server);
            assert!(
                said.contains("--cluster-signing-cert-file"),
                "{server}: {said}"
            );
        }
    }
}
